//! The portable driver (Windows, where there is no poll(2) over pipes): a thread per output
//! stream, a bounded channel of lines, and the same stop of the whole group on timeout or
//! interruption.

use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::reader::Bounded;
use super::{Captured, Pipe, Reader, Spec, Stopper, spawn};

enum Event {
    Line(Pipe, String),
    Done(Pipe, Bounded),
}

fn reader<R: io::Read + Send + 'static>(
    stream: Pipe,
    source: Option<R>,
    encoding: &'static encoding_rs::Encoding,
    tx: mpsc::SyncSender<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = Reader::new(stream, source, encoding);
        let mut buf = vec![0u8; 64 * 1024];
        while r.source.is_some() {
            r.read(&mut buf, &mut |s, line| {
                let _ = tx.send(Event::Line(s, line.to_owned()));
            });
        }
        let _ = tx.send(Event::Done(stream, std::mem::take(&mut r.kept)));
    })
}

pub(super) fn run(
    spec: &Spec,
    on_start: &mut dyn FnMut(u32),
    on_line: &mut dyn FnMut(Pipe, &str),
) -> io::Result<Captured> {
    let mut stopper = Stopper::new(spec.timeout);
    let super::Started { mut child, group } = spawn(spec, on_start)?;
    // Bounded: a command printing faster than lines are shown waits for them.
    let (tx, rx) = mpsc::sync_channel::<Event>(1024);
    let threads = [
        reader(Pipe::Stdout, child.stdout.take(), spec.encoding, tx.clone()),
        reader(Pipe::Stderr, child.stderr.take(), spec.encoding, tx),
    ];
    let mut captured = Captured::default();
    let mut open = 2;
    let mut status = None;
    let mut gone: Option<Instant> = None;
    while open > 0 || status.is_none() {
        // After a stop, something the command started may hold its output open: stop waiting
        // for it soon after the command itself is gone.
        if stopper.stopped() && gone.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(25)) {
            Ok(Event::Line(stream, line)) => on_line(stream, &line),
            Ok(Event::Done(stream, kept)) => {
                open -= 1;
                match stream {
                    Pipe::Stderr => captured.stderr = kept.finish(),
                    _ => captured.stdout = kept.finish(),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
        if status.is_none() {
            match crate::os::hooks::failure("wait").map_or_else(|| child.try_wait(), Err) {
                Ok(s) => {
                    status = s;
                    if status.is_some() {
                        gone = Some(Instant::now());
                    }
                }
                Err(e) => {
                    group.kill();
                    let _ = child.wait();
                    return Err(super::lost_track(e));
                }
            }
        }
        stopper.tick(&group, &mut captured, status.is_some());
    }
    if stopper.stopped() {
        group.kill();
    } else {
        for t in threads {
            let _ = t.join();
        }
        group.release();
    }
    let status = status.expect("the loop ends once the process has exited");
    captured.exit_code = status.code();
    captured.duration = stopper.elapsed();
    Ok(captured)
}
