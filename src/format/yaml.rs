//! YAML to a tree of spanned nodes, and a serde `Deserializer` over that tree.
//!
//! serde-saphyr parses (pure Rust, line/column on every error, duplicate keys rejected, alias
//! and size budgets). We keep our own [`Node`] tree so the loader can check each part of a
//! runbook separately and report *every* problem, not only the first serde meets: the
//! deserializer below collects all unknown keys (with did-you-mean) into a sink instead of
//! stopping, and every error it returns carries the span of the innermost node involved.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::format::diagnostic::did_you_mean;
use crate::format::source::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn null(span: Span) -> Node {
        Node { span, kind: NodeKind::Null }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// What kind of YAML value this is, for messages ("a list", "a number", ...).
    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "nothing (null)",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "a whole number",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The scalar's text as a template would see it (numbers and booleans as written).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A canonical JSON rendering (used for fingerprints of step definitions).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            NodeKind::Null => J::Null,
            NodeKind::Bool(b) => J::Bool(*b),
            NodeKind::Int(i) => J::from(*i),
            NodeKind::Float(f) => J::from(*f),
            NodeKind::Str(s) => J::String(s.clone()),
            NodeKind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                J::Object(entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json())).collect())
            }
        }
    }
}

/// A YAML parse failure with its position.
#[derive(Debug)]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

impl ParseError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        if self.message.starts_with("a tab character") {
            "indent with spaces; YAML does not allow tabs for indentation"
        } else {
            "fix the YAML syntax at this point (indentation, quotes, a missing `:`)"
        }
    }
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        reject_unsupported_tags: true,
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_nodes: 200_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
        },
    };
    if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(Node::null(Span::new(0, 0)));
    }
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let loc = e.location();
        let message = clean_parse_message(&e.without_snippet().to_string());
        let line = loc.map_or(1, |l| l.line() as usize).max(1);
        let col = loc.map_or(1, |l| l.column() as usize).max(1);
        // The scanner reports a tab where the value it was reading began (often the line
        // before); the tab itself is what to fix.
        if (message.contains("found a tab") || message.contains("tabs disallowed"))
            && let Some((line, col)) = first_tab_from(text, line, col)
        {
            return ParseError { message: "a tab character, where YAML allows only spaces".into(), line, col };
        }
        ParseError { message, line, col }
    })
}

/// The line and column (1-based) of the tab to blame for an error at (`line`, `col`): the first
/// on that line, or else the first after it.
fn first_tab_from(text: &str, line: usize, col: usize) -> Option<(usize, usize)> {
    let line_start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    let line_text = text.get(line_start..)?.split('\n').next().unwrap_or("");
    let start = line_start + line_text.chars().take(col - 1).map(char::len_utf8).sum::<usize>();
    let tab = match line_text.find('\t') {
        Some(i) => line_start + i,
        None => start + text.get(start..)?.find('\t')?,
    };
    let before = &text[..tab];
    let tab_line = before.matches('\n').count() + 1;
    let tab_col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    Some((tab_line, tab_col))
}

/// serde-saphyr appends " at line X column Y" and similar; the diagnostic shows the position itself.
fn clean_parse_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    if first.contains("budget breached: Nodes") || first.contains("budget breached: Alias") {
        return "the document expands to too many values (more than 200000; an alias bomb?)".into();
    }
    if first.contains("budget breached: Depth") || first.contains("recursion limit exceeded") {
        return "values are nested more than 64 levels deep".into();
    }
    if first.contains("budget breached") {
        return "the document is too large to read".into();
    }
    if first.starts_with("multiple YAML documents detected") {
        return "a runbook is one YAML document, and this file holds several (separated by `---`)".into();
    }
    if first.starts_with("recursive references require") {
        return "an alias refers to the value that contains it".into();
    }
    if let Some(rest) = first.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("duplicate key `{key}` (each key may appear once in a mapping)");
    }
    let re = regex::Regex::new(r"(?i)\s*(?:at|,)?\s*line \d+,? column \d+\s*:?").expect("static regex");
    let cleaned = re.replace_all(first, "").trim().trim_end_matches(':').to_string();
    if cleaned.is_empty() { first.to_string() } else { cleaned }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = serde_saphyr::Spanned::<NodeKind>::deserialize(deserializer)?;
        let span = spanned.referenced.span();
        let offset = span.byte_offset().unwrap_or(0) as usize;
        let len = span.byte_len().unwrap_or(0) as usize;
        Ok(Node { span: Span::new(offset, len), kind: spanned.value })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NodeKind, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        i64::try_from(v).map(NodeKind::Int).map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<NodeKind, E> {
        Err(E::custom("binary values are not supported"))
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeKind::Map(entries))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing typed values out of a node tree.

/// An error met while reading a typed value from a node, with the span it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), span: None, hint: None }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing required key `{field}`"),
            span: None,
            hint: Some(format!("add `{field}: ...`")),
        }
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let found = match unexp {
            de::Unexpected::Map => "a mapping".to_string(),
            de::Unexpected::Seq => "a list".to_string(),
            de::Unexpected::Unit | de::Unexpected::Option => "nothing (null)".to_string(),
            other => other.to_string(),
        };
        de::Error::custom(format_args!("expected {exp}, found {found}"))
    }
}

impl DeError {
    fn or_at(mut self, span: Span) -> DeError {
        self.span.get_or_insert(span);
        self
    }
}

/// Reads `T` from `node`; unknown keys anywhere inside are pushed to `unknown` (not fatal).
pub fn from_node<'a, T: Deserialize<'a>>(node: &'a Node, unknown: &RefCell<Vec<DeError>>) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, sink: unknown })
}

/// The marker struct name through which [`crate::format::model::Sp`] asks for a node's span.
pub const SPANNED: &str = "$runbook::Spanned";

pub struct NodeDe<'a, 's> {
    node: &'a Node,
    sink: &'s RefCell<Vec<DeError>>,
}

impl<'a, 's> NodeDe<'a, 's> {
    fn child(&self, node: &'a Node) -> NodeDe<'a, 's> {
        NodeDe { node, sink: self.sink }
    }

    fn unexpected(&self) -> de::Unexpected<'a> {
        match &self.node.kind {
            NodeKind::Null => de::Unexpected::Unit,
            NodeKind::Bool(b) => de::Unexpected::Bool(*b),
            NodeKind::Int(i) => de::Unexpected::Signed(*i),
            NodeKind::Float(f) => de::Unexpected::Float(*f),
            NodeKind::Str(s) => de::Unexpected::Str(s),
            NodeKind::Seq(_) => de::Unexpected::Seq,
            NodeKind::Map(_) => de::Unexpected::Map,
        }
    }
}

macro_rules! forward_to_any {
    ($($name:ident)*) => {$(
        fn $name<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'a> Deserializer<'a> for NodeDe<'a, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let result = match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Str(s) => visitor.visit_borrowed_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(SeqDe { iter: items.iter(), de: self.child(self.node) }),
            NodeKind::Map(entries) => {
                visitor.visit_map(MapDe { iter: entries.iter(), value: None, fields: None, de: self.child(self.node) })
            }
        };
        result.map_err(|e| e.or_at(span))
    }

    /// Strings accept any scalar, so `args: [-n, 5]` reads as text the way it was written.
    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                let text = self.node.scalar_text().unwrap_or_default();
                visitor.visit_string(text).map_err(|e: DeError| e.or_at(self.node.span))
            }
            NodeKind::Str(_) => self.deserialize_any(visitor),
            _ => Err(<DeError as de::Error>::invalid_type(self.unexpected(), &visitor).or_at(self.node.span)),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        if name == SPANNED {
            return visitor.visit_map(SpannedDe { de: self, state: 0 });
        }
        match &self.node.kind {
            NodeKind::Map(entries) => visitor
                .visit_map(MapDe { iter: entries.iter(), value: None, fields: Some(fields), de: self.child(self.node) })
                .map_err(|e| e.or_at(span)),
            _ => Err(<DeError as de::Error>::invalid_type(self.unexpected(), &visitor).or_at(span)),
        }
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            NodeKind::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()).map_err(|e: DeError| e.or_at(span)),
            _ => Err(<DeError as de::Error>::invalid_type(self.unexpected(), &visitor).or_at(span)),
        }
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

struct SeqDe<'a, 's, I> {
    iter: I,
    de: NodeDe<'a, 's>,
}

impl<'a, I: Iterator<Item = &'a Node>> SeqAccess<'a> for SeqDe<'a, '_, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed.deserialize(self.de.child(node)).map(Some).map_err(|e| e.or_at(node.span)),
            None => Ok(None),
        }
    }
}

struct MapDe<'a, 's, I> {
    iter: I,
    value: Option<&'a Node>,
    /// Known keys, when reading a struct: other keys go to the sink with a did-you-mean.
    fields: Option<&'static [&'static str]>,
    de: NodeDe<'a, 's>,
}

impl<'a, I: Iterator<Item = &'a (Node, Node)>> MapAccess<'a> for MapDe<'a, '_, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.iter.by_ref() {
            if let (Some(fields), Some(name)) = (self.fields, key.as_str())
                && !fields.contains(&name)
            {
                let hint = did_you_mean(name, fields.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("known keys here: {}", fields.join(", "))));
                self.de.sink.borrow_mut().push(DeError {
                    message: format!("unknown key `{name}`"),
                    span: Some(key.span),
                    hint,
                });
                continue;
            }
            self.value = Some(value);
            return seed.deserialize(self.de.child(key)).map(Some).map_err(|e| e.or_at(key.span));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().ok_or_else(|| <DeError as de::Error>::custom("value without key"))?;
        seed.deserialize(self.de.child(node)).map_err(|e| e.or_at(node.span))
    }
}

/// Hands a node's span and the node itself to [`crate::format::model::Sp`].
struct SpannedDe<'a, 's> {
    de: NodeDe<'a, 's>,
    state: u8,
}

impl<'a> MapAccess<'a> for SpannedDe<'a, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let key = match self.state {
            0 => "offset",
            1 => "len",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let span = self.de.node.span;
        self.state += 1;
        match self.state {
            1 => seed.deserialize((span.offset as u64).into_deserializer()),
            2 => seed.deserialize((span.len as u64).into_deserializer()),
            _ => seed.deserialize(self.de.child(self.de.node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_byte_spans() {
        let text = "a: 1\nb:\n  - x\n  - 'y z'\n";
        let node = parse(text).unwrap();
        let b = node.get("b").unwrap();
        let NodeKind::Seq(items) = &b.kind else { panic!("not a seq") };
        assert_eq!(&text[items[0].span.offset..][..1], "x");
        assert_eq!(&text[items[1].span.offset..][..1], "'");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }

    #[test]
    fn yes_is_a_string() {
        let node = parse("a: yes\n").unwrap();
        assert_eq!(node.get("a").unwrap().as_str(), Some("yes"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..20 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&text).is_err());
    }
}
