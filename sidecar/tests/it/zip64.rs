//! ZIP64: a file over 4 GiB (sparse, so it costs no disk) is stored with its real size.
//! Slow in a debug build: run with `cargo test -p mhm-sidecar --release --test zip64 -- --ignored`.

use crate::common;

use std::fs;

use common::*;

#[test]
#[ignore = "compresses 4.3 GiB; run in release with --ignored"]
fn a_file_over_4_gib_round_trips_its_size() {
    let root = make_root();
    let r = root.path();
    let huge = fs::File::create(r.join("data/users/u1/huge.bin")).unwrap();
    huge.set_len((4u64 << 30) + (300 << 20)).unwrap();
    drop(huge);
    assert_code(&run(r, &["backup", "create", "--name", "z64"]), 0);
    let zip = r.join("data/backups/z64.zip");
    let mut z = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
    assert_eq!(z.by_name("users/u1/huge.bin").unwrap().size(), (4u64 << 30) + (300 << 20));
    drop(z);
    assert_code(&run(r, &["backup", "verify", "z64"]), 0);
    // Other tools read the same size (Info-ZIP, when installed).
    if let Ok(out) = std::process::Command::new("unzip").arg("-l").arg(&zip).launch_output() {
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(listing.contains(&((4u64 << 30) + (300 << 20)).to_string()), "{listing}");
    }
}
