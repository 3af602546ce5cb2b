//! One worker process: `sh -c CMD`, JSON lines over its standard input and output, one request
//! in flight, a deadline on every reply. Any failure — the worker exits, is late, or breaks the
//! protocol — stops the worker for good and is reported with the command, the request and the
//! worker's last lines of standard error.

use crate::wire::{excerpt, parse_line};
use harness::error::ModelFault;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The protocol every worker speaks; a worker that answers hello with `"protocol":
/// PROTOCOL_2` speaks its extensions too (opaque generator states, previews, `generate`,
/// sampling options).
pub const PROTOCOL: &str = "evalcot-ext/1";
/// The extended protocol (see PROTOCOL.md); offered in every hello's `"protocols"`.
pub const PROTOCOL_2: &str = "evalcot-ext/2";

/// Worker processes per external model (`--workers K`); 1 until set.
static WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Starts `k` (≥ 1) processes for every external model opened from now on. Results do not
/// depend on it: every draw comes from the request's seeds, never from which process answers.
pub fn set_workers(k: usize) {
    WORKERS.store(k.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The processes each external model gets.
pub fn workers() -> usize {
    WORKERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// `K` processes of one worker command, all answering the same hello, each request served by
/// whichever is free.
pub struct Pool {
    workers: Vec<Worker>,
    free: Mutex<Vec<usize>>,
    ready: std::sync::Condvar,
}

impl Pool {
    /// Starts [`workers()`] processes of `command` and returns the pool and their hello reply.
    /// Processes that introduce themselves differently (another model, another grid) are an
    /// error: requests go to any of them.
    pub fn start(
        command: &str,
        role: &'static str,
        timeout: Duration,
    ) -> Result<(Pool, Value), String> {
        let k = workers();
        // Started in parallel: each may load weights in its hello.
        let started: Vec<Result<(Worker, Value), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..k)
                .map(|_| s.spawn(|| Worker::start(command, role, timeout)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(format!(
                            "ext {role} `{command}`: the starting thread panicked"
                        ))
                    })
                })
                .collect()
        });
        let mut workers = Vec::with_capacity(k);
        let mut hello: Option<Value> = None;
        for r in started {
            let (w, mut h) = r?;
            if let Some(o) = h.as_object_mut() {
                o.remove("id");
            }
            match &hello {
                Some(first) if *first != h => {
                    return Err(format!(
                        "{}: the {k} processes introduce themselves differently ({} against {}); --workers needs identical workers",
                        w.label(),
                        excerpt(&first.to_string()),
                        excerpt(&h.to_string())
                    ))
                }
                Some(_) => {}
                None => hello = Some(h),
            }
            workers.push(w);
        }
        let hello = hello.ok_or_else(|| format!("ext {role} `{command}`: no worker started"))?;
        Ok((
            Pool {
                free: Mutex::new((0..workers.len()).rev().collect()),
                workers,
                ready: std::sync::Condvar::new(),
            },
            hello,
        ))
    }

    /// Whether requests may come from several threads at once (more than one process).
    pub fn concurrent(&self) -> bool {
        self.workers.len() > 1
    }

    pub fn label(&self) -> String {
        self.workers[0].label()
    }

    /// [`Worker::request`] on a free process (waiting for one).
    pub fn request(&self, op: &str, body: Value) -> Result<Value, ModelFault> {
        let poisoned = || ModelFault::from(format!("{}: worker pool lock poisoned", self.label()));
        let i = {
            let mut free = self.free.lock().map_err(|_| poisoned())?;
            loop {
                if let Some(i) = free.pop() {
                    break i;
                }
                free = self.ready.wait(free).map_err(|_| poisoned())?;
            }
        };
        let result = self.workers[i].request(op, body);
        if let Ok(mut free) = self.free.lock() {
            free.push(i);
        }
        self.ready.notify_one();
        result
    }
}
/// Lines of a worker's standard error kept for error messages.
const STDERR_TAIL: usize = 20;

pub struct Worker {
    command: String,
    role: &'static str,
    timeout: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    next_id: u64,
    /// Set by the first failure; every later request repeats it.
    failed: Option<String>,
}

/// The reply deadline: `EVALCOT_EXT_TIMEOUT` seconds, 600 by default.
pub fn timeout_from_env() -> Result<Duration, String> {
    match std::env::var("EVALCOT_EXT_TIMEOUT") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                format!("EVALCOT_EXT_TIMEOUT={v:?}: expected a positive number of seconds")
            }),
        Err(_) => Ok(Duration::from_secs(600)),
    }
}

impl Worker {
    /// Starts `command` and shakes hands; returns the worker and its hello reply.
    pub fn start(
        command: &str,
        role: &'static str,
        timeout: Duration,
    ) -> Result<(Worker, Value), String> {
        if command.trim().is_empty() {
            return Err(format!("ext {role}: the command after \"ext:\" is empty"));
        }
        // Its own process group: `sh -c` may not exec the command, and a stopped worker must not
        // leave its children running (a hung model holding a GPU).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ext {role} `{command}`: cannot start: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let end = line.is_err();
                if tx.send(line).is_err() || end {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&tail);
        let echo = std::env::var_os("EVALCOT_EXT_STDERR").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[ext] {line}");
                }
                if let Ok(mut t) = sink.lock() {
                    if t.len() == STDERR_TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        });
        let worker = Worker {
            command: command.to_string(),
            role,
            timeout,
            inner: Mutex::new(Inner {
                stdin: child.stdin.take(),
                child,
                lines,
                stderr: tail,
                next_id: 0,
                failed: None,
            }),
        };
        let hello = worker.request(
            "hello",
            serde_json::json!({"protocol": PROTOCOL, "protocols": [PROTOCOL, PROTOCOL_2], "role": role}),
        )?;
        Ok((worker, hello))
    }

    /// `ext generator `CMD``: the prefix of this worker's messages.
    pub fn label(&self) -> String {
        format!("ext {} `{}`", self.role, self.command)
    }

    /// Sends `{"id", "op", …body}` and returns the reply's fields (an `ok: true` reply).
    pub fn request(&self, op: &str, body: Value) -> Result<Value, ModelFault> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| format!("{}: worker lock poisoned", self.label()))?;
        if let Some(first) = &inner.failed {
            return Err(format!(
                "{}: stopped after an earlier failure: {first}",
                self.label()
            )
            .into());
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let result = self.exchange(&mut inner, id, op, body);
        match &result {
            // The worker answered in protocol that its model produced a NaN or an infinity for
            // this input: it stays up for the next request.
            Err(ModelFault::NonFinite(_)) | Ok(_) => {}
            Err(ModelFault::Failed(e)) => {
                inner.failed = Some(e.clone());
                kill_group(&mut inner.child);
            }
        }
        result.map_err(|e| e.context(format!("{}: {op} request {id}", self.label())))
    }

    fn exchange(
        &self,
        inner: &mut Inner,
        id: u64,
        op: &str,
        body: Value,
    ) -> Result<Value, ModelFault> {
        let mut msg = serde_json::Map::new();
        msg.insert("id".into(), id.into());
        msg.insert("op".into(), op.into());
        if let Value::Object(fields) = body {
            msg.extend(fields);
        }
        let line = Value::Object(msg).to_string() + "\n";
        let stdin = inner.stdin.as_mut().ok_or("standard input is closed")?;
        if let Err(e) = stdin.write_all(line.as_bytes()).and_then(|_| stdin.flush()) {
            return Err(self
                .exited(inner, &format!("cannot write the request ({e})"))
                .into());
        }
        let reply = match inner.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("cannot read the reply: {e}").into()),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "no reply within {:.0} s (EVALCOT_EXT_TIMEOUT); the worker was stopped{}",
                    self.timeout.as_secs_f64(),
                    stderr_tail(inner)
                )
                .into())
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.exited(inner, "no reply").into())
            }
        };
        let v =
            parse_line(&reply).map_err(|e| format!("malformed reply, {e}: {}", excerpt(&reply)))?;
        let obj = v
            .as_object()
            .ok_or_else(|| format!("malformed reply, not a JSON object: {}", excerpt(&reply)))?;
        match obj.get("id").and_then(Value::as_u64) {
            Some(got) if got == id => {}
            _ => {
                return Err(
                    format!("the reply does not carry \"id\": {id}: {}", excerpt(&reply)).into(),
                )
            }
        }
        match obj.get("ok") {
            Some(Value::Bool(true)) => Ok(v),
            Some(Value::Bool(false)) => {
                let message = format!(
                    "the worker answered with an error: {}",
                    obj.get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("(no \"error\" given)")
                );
                // A model's NaN or infinity fails only the image at hand (PROTOCOL.md).
                Err(match obj.get("non_finite") {
                    Some(Value::Bool(true)) => ModelFault::NonFinite(message),
                    _ => ModelFault::Failed(message),
                })
            }
            _ => Err(format!("the reply has no \"ok\": true/false: {}", excerpt(&reply)).into()),
        }
    }

    /// The message for a worker gone: its exit status and last standard error lines.
    fn exited(&self, inner: &mut Inner, what: &str) -> String {
        // Give the process a moment to be reaped so that its status is known.
        let mut status = None;
        for _ in 0..20 {
            if let Ok(Some(s)) = inner.child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let how = status.map_or("the worker closed its output".to_string(), |s| {
            format!("the worker exited ({s})")
        });
        format!("{what}: {how}{}", stderr_tail(inner))
    }
}

fn stderr_tail(inner: &Inner) -> String {
    // The stderr thread may still be reading the last lines of a dying worker.
    std::thread::sleep(Duration::from_millis(50));
    let lines: Vec<String> = inner
        .stderr
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last standard error lines: {}", lines.join(" | "))
    }
}

impl Drop for Worker {
    /// Closes the worker's input (its cue to exit), waits up to 5 s, then kills it.
    fn drop(&mut self) {
        if let Ok(inner) = self.inner.get_mut() {
            inner.stdin.take();
            for _ in 0..100 {
                if matches!(inner.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            kill_group(&mut inner.child);
        }
    }
}

/// Kills the worker's whole process group (the shell and everything it started), then reaps
/// the shell.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the worker leads (it
        // was spawned with process_group(0)); no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A reply's field, or an error naming it.
pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name)
        .ok_or_else(|| format!("the reply has no \"{name}\": {}", excerpt(&v.to_string())))
}

/// A reply's list field of exactly `len` items.
pub fn list<'a>(v: &'a Value, name: &str, len: usize) -> Result<&'a Vec<Value>, String> {
    let items = field(v, name)?
        .as_array()
        .ok_or_else(|| format!("\"{name}\" is not a list"))?;
    if items.len() != len {
        return Err(format!(
            "\"{name}\" has {} items for {len} in the request",
            items.len()
        ));
    }
    Ok(items)
}
