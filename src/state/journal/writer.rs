//! Appending records to a run's journal: each on disk before the step it announces takes effect
//! (at `full` durability), a new journal appearing only once its first record is.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::format::mask::Masker;

use super::{Durability, JournalError, Record, runs_dir};

pub struct Journal {
    file: File,
    pub path: PathBuf,
    pending: Vec<u8>,
    /// Records written to the file but not yet synced.
    unsynced: bool,
    masker: Masker,
    durability: Durability,
}

impl Journal {
    /// Creates the run's journal holding its first record. The file appears under its final name
    /// only once that record is on disk, so no journal is ever found empty.
    pub fn create(
        state: &Path,
        runbook: &str,
        run_id: &str,
        masker: Masker,
        first: &Record,
        durability: Durability,
    ) -> Result<Journal, JournalError> {
        let dir = runs_dir(state, runbook);
        fs::create_dir_all(&dir).map_err(|e| JournalError::StateDir {
            path: state.to_path_buf(),
            reason: crate::os::fs::io_reason_at(&dir, &e),
        })?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let temp = dir.join(format!(".{run_id}.jsonl.tmp"));
        let werr = |e: io::Error| JournalError::Write { path: path.clone(), reason: crate::os::fs::io_reason(&e) };
        let mut journal = Journal {
            file: OpenOptions::new().create_new(true).append(true).open(&temp).map_err(werr)?,
            path: path.clone(),
            pending: Vec::new(),
            unsynced: false,
            masker,
            durability,
        };
        journal.append(first, false)?;
        let synced = durability.syncs();
        let result = journal
            .file
            .write_all(&journal.pending)
            .and_then(|()| if synced { journal.file.sync_data() } else { Ok(()) })
            .and_then(|()| crate::os::fs::replace_file(&temp, &path, synced));
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(werr(e));
        }
        journal.pending.clear();
        Ok(journal)
    }

    pub fn open(path: &Path, masker: Masker, durability: Durability) -> Result<Journal, JournalError> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| JournalError::Write { path: path.to_path_buf(), reason: crate::os::fs::io_reason(&e) })?;
        // After a torn last line, start the next record on a fresh line.
        let text = fs::read(path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with(b"\n") {
            let _ = file.write_all(b"\n");
        }
        Ok(Journal { file, path: path.to_path_buf(), pending: Vec::new(), unsynced: false, masker, durability })
    }

    /// Adds a record; with `sync` it and everything before it are written and on disk on return.
    pub fn append(&mut self, record: &Record, sync: bool) -> Result<(), JournalError> {
        let mut value = serde_json::to_value(record).expect("records serialize");
        self.masker.mask_json(&mut value);
        serde_json::to_writer(&mut self.pending, &value).expect("json to memory");
        self.pending.push(b'\n');
        if sync { self.sync() } else { Ok(()) }
    }

    /// Adds a record and writes it to the file without waiting for the disk: it survives the
    /// engine being killed (the system has it), not a power cut. The next sync covers it.
    pub fn append_written(&mut self, record: &Record) -> Result<(), JournalError> {
        self.append(record, false)?;
        let path = self.path.clone();
        self.file
            .write_all(&self.pending)
            .map_err(|e| JournalError::Write { path, reason: crate::os::fs::io_reason(&e) })?;
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Writes what is pending to the file and, at `full` durability, waits for the disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() && !self.unsynced {
            return Ok(());
        }
        let err = |e: io::Error, path: &Path| JournalError::Write {
            path: path.to_path_buf(),
            reason: crate::os::fs::io_reason(&e),
        };
        crate::os::hooks::point("before-sync");
        self.file.write_all(&self.pending).map_err(|e| err(e, &self.path))?;
        if self.durability.syncs() {
            self.file.sync_data().map_err(|e| err(e, &self.path))?;
        }
        self.pending.clear();
        self.unsynced = false;
        crate::os::hooks::point("after-sync");
        Ok(())
    }
}
