//! Alerts (issue 20): Healthchecks-style pings to a real HTTP server on loopback, and the
//! notify command, on a failing `maintain`, its recovery and an idle run; a monitor that
//! cannot be reached never fails the job. (Unix: the command is run by `sh`.)
#![cfg(unix)]

use crate::common;

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};

use common::*;

/// A monitor on loopback: every request's path and body, in order.
struct Monitor {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Monitor {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ping/0f1e2d3c", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let path = request.split(' ').nth(1).unwrap_or_default().to_string();
                log.lock().unwrap().push((path, String::from_utf8_lossy(&body).into_owned()));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                );
            }
        });
        Monitor { url, seen }
    }

    /// The requests since the last call: (`/ping/<id>[/start|/fail]`, body).
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

#[test]
fn maintain_pings_the_monitor_and_tells_the_command_of_failure_and_recovery() {
    let monitor = Monitor::start();
    let root = make_root();
    let r = root.path();
    let env = fs::read_to_string(r.join(".env")).unwrap();
    let told = r.join("told.txt");
    write(
        &r.join(".env"),
        format!(
            "{env}MHM_NOTIFY_URL={}\nMHM_NOTIFY_COMMAND=\"{{ echo event=$MHM_NOTIFY_EVENT; cat; }} >> told.txt\"\n",
            monitor.url
        ),
    );
    // A corrupt archive copy: log archival fails.
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), "not gzip");
    assert_code(&run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]), 1);
    let pings = monitor.take();
    let paths: Vec<&str> = pings.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/ping/0f1e2d3c/start", "/ping/0f1e2d3c/fail"]);
    assert!(pings[1].1.contains("FAILED") && pings[1].1.contains("logs_archive"), "{}", pings[1].1);
    let text = fs::read_to_string(&told).unwrap();
    assert!(text.starts_with("event=fail\n") && text.contains("logs_archive: FAILED"), "{text}");
    // Fixed: the next day's run works; the command hears of the recovery, once.
    fs::remove_file(r.join("logs/archive/app.log.2026-03-01.gz")).unwrap();
    assert_code(&run(r, &["--now", "2026-03-21T02:30:00Z", "maintain"]), 0);
    let paths: Vec<String> = monitor.take().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/ping/0f1e2d3c/start", "/ping/0f1e2d3c"]);
    let text = fs::read_to_string(&told).unwrap();
    assert_eq!(text.matches("event=recovered").count(), 1, "{text}");
    // An idle run: a success ping only; the command is not run; no file changes.
    let before = snapshot(r);
    assert_code(&run(r, &["--now", "2026-03-21T03:30:00Z", "maintain"]), 0);
    let paths: Vec<String> = monitor.take().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["/ping/0f1e2d3c"]);
    let mut after = snapshot(r);
    let mut before = before;
    for s in [&mut before, &mut after] {
        s.retain(|p, _| !p.starts_with("logs"));
    }
    assert_same(&before, &after);
    // A monitor that cannot be reached fails nothing, and the URL (its token) is not shown.
    let env = fs::read_to_string(r.join(".env")).unwrap();
    write(&r.join(".env"), env.replace(&monitor.url, "http://127.0.0.1:9/ping/secret-token"));
    let out = run(r, &["--now", "2026-03-22T02:30:00Z", "maintain"]);
    assert_code(&out, 0);
    let log = fs::read_to_string(r.join("logs/sidecar.log")).unwrap();
    assert!(log.contains("ping to MHM_NOTIFY_URL failed"), "{log}");
    assert!(!log.contains("secret-token") && !stderr(&out).contains("secret-token"));
}
