//! Helpers shared by the integration tests: read a log's whole history back.
#![allow(dead_code)]

pub mod launch;

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use chrono::{DateTime, TimeZone, Utc};
use flate2::read::MultiGzDecoder;
use mhm_log::RollingFile;
use mhm_logfiles::naming::CopyName;

/// Settings that keep events in memory until something writes them: a buffer of `cap`
/// bytes, no timed flush for an hour, no rotation.
pub fn held_in_memory(mode: mhm_log::WriteMode, cap: usize) -> mhm_log::Settings {
    mhm_log::Settings::default()
        .write_mode(mode)
        .buffer_capacity(cap)
        .flush_interval(std::time::Duration::from_secs(3600))
        .rotation_disabled(true)
}

/// A rotating file at `path` with these settings, on the test's clock.
pub fn open(
    path: impl AsRef<Path>,
    settings: mhm_log::Settings,
    clock: &mhm_log::ManualClock,
) -> mhm_log::RollingFile {
    mhm_log::RollingFile::builder().settings(settings).clock(clock.clone()).build(path).unwrap()
}

pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

/// Every copy of `log` in `dir` (any of backups/archive), oldest first: (name, path).
pub fn copies(dir: &Path, log: &str) -> Vec<(CopyName, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries {
        let e = e.unwrap();
        if let Some(name) = CopyName::parse_for(log, e.file_name().to_str().unwrap()) {
            out.push((name, e.path()));
        }
    }
    out.sort_by(|a, b| a.0.order(&b.0));
    out
}

/// The file names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        }
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

pub fn read_copy(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        MultiGzDecoder::new(&bytes[..]).read_to_string(&mut s).unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// A log's whole history in write order: archive and backups merged by (date, number),
/// then the active file. Each element is one file's text.
pub fn history(log_dir: &Path, log: &str) -> Vec<(String, String)> {
    let mut all = copies(&log_dir.join("archive"), log);
    all.extend(copies(&log_dir.join("backups"), log));
    all.sort_by(|a, b| a.0.order(&b.0));
    let mut out: Vec<(String, String)> =
        all.into_iter().map(|(n, p)| (n.to_string(), read_copy(&p))).collect();
    if let Ok(text) = fs::read_to_string(log_dir.join(log)) {
        out.push((log.to_string(), text));
    }
    out
}

/// Whether this Windows build runs under Wine (its ntdll exports `wine_get_version`). A
/// test whose promise rests on something Wine does not implement says so and checks what
/// it can; everything else runs the same under Wine as on Windows.
#[allow(dead_code)]
pub fn under_wine() -> bool {
    #[cfg(windows)]
    {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; ntdll is loaded in every Windows process.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }
    #[cfg(not(windows))]
    false
}

/// One record written as an application in another language hands it over (the Python
/// package's path): one `write` is one event, an urgent one (ERROR) written out at once.
pub fn write_record(log: &RollingFile, record: &[u8], urgent: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut w = log;
    let written = w.write(record)?;
    assert_eq!(written, record.len(), "one write is one whole event");
    if urgent {
        log.flush()?;
    }
    Ok(())
}
