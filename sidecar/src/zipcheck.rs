//! Untrusted zips: the end records and the central directory are read and checked here,
//! against the file's real length, before the `zip` crate sees the file.
//!
//! Every zip the sidecar did not just write (anything in `data/backups/`, a snapshot, a
//! zip given by path) may be hostile. The `zip` crate believes the entry count it reads
//! and reserves memory for it before reading a single entry (a sparse file whose ZIP64
//! record claims 300 million entries made it ask for 62 GB and abort), and it reads
//! entries whose data overlap (a zip bomb: 200 entries inflating the same bytes). So
//! [`open`] first reads the directory itself, with memory bounded by the bytes really
//! there:
//!
//! - one end-of-central-directory record (the last one, as the `zip` crate takes it), and
//!   its ZIP64 records when it points to them, each where it claims to be;
//! - the central directory inside the file, before the end records, large enough for the
//!   entries it claims (46 bytes at least each), and every one of its records read;
//! - names unique (a duplicate means two tools extract different data under one name),
//!   plain UTF-8, no encryption, stored or deflated only;
//! - every entry's data inside the file, after its local header and before the directory,
//!   no two entries' data overlapping, and no entry claiming to inflate to more than
//!   deflate can produce from its compressed size;
//!
//! then hands the file to `zip::ZipArchive` and checks that it sees the same entries.
//! Whoever reads an entry should still stop at its declared size ([`Entry::size`]): with
//! the checks above, the work is then bounded by what the file can honestly hold.
//!
//! (`a_sound_zip_opens_with_its_entries` is the plain case: a zip the `zip` crate wrote
//! opens, with each entry's name and size.)

use std::{
    collections::HashSet,
    io::{self, BufReader, Read, Seek, SeekFrom},
};

use zip::ZipArchive;

const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const EOCD64_SIG: [u8; 4] = *b"PK\x06\x06";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
/// The smallest central directory record (no name, extra field or comment).
const CENTRAL_LEN: u64 = 46;
const LOCAL_LEN: u64 = 30;
const EOCD_LEN: u64 = 22;
const LOCATOR_LEN: u64 = 20;
const EOCD64_LEN: u64 = 56;
/// The end record's comment is at most this long, so the record lies in the file's last
/// `EOCD_LEN + MAX_COMMENT` bytes.
const MAX_COMMENT: u64 = u16::MAX as u64;
/// Deflate cannot inflate one byte to more than about 1032; a little more is allowed.
const MAX_RATIO: u64 = 1100;
/// What an entry may inflate to whatever its compressed size (empty and tiny inputs).
const RATIO_SLACK: u64 = 4096;

/// One entry, as its central directory record and local header say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its name.
    pub name: String,
    /// Where its local header starts.
    pub header_start: u64,
    /// Where its (compressed) data start.
    pub data_start: u64,
    /// Compressed size.
    pub compressed: u64,
    /// Uncompressed size: a reader must stop here.
    pub size: u64,
}

/// A zip's checked central directory.
#[derive(Clone, Debug, Default)]
pub(crate) struct Directory {
    /// Every entry, in directory order (the order `ZipArchive` indexes them).
    pub entries: Vec<Entry>,
    /// Where the central directory starts.
    pub start: u64,
}

/// Checks the zip `reader` holds (see the module docs), then opens it with the `zip`
/// crate. The error says what is wrong, for a line naming the file.
pub(crate) fn open<R: Read + Seek>(mut reader: R) -> Result<(ZipArchive<R>, Directory), String> {
    let dir = read_directory(&mut reader)?;
    reader.seek(SeekFrom::Start(0)).map_err(|e| format!("cannot read: {e}"))?;
    let archive = ZipArchive::new(reader).map_err(|e| e.to_string())?;
    let same = archive.len() == dir.entries.len()
        && dir.entries.iter().enumerate().all(|(i, e)| archive.name_for_index(i) == Some(&e.name));
    if !same {
        return Err("its directory reads differently depending on the tool".into());
    }
    Ok((archive, dir))
}

/// Reads and checks the central directory of the zip `r` holds (see the module docs).
pub(crate) fn read_directory<R: Read + Seek>(r: &mut R) -> Result<Directory, String> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| format!("cannot read: {e}"))?;
    let end = find_end(r, len)?;
    let cd_end = end.cd_start.checked_add(end.cd_size).ok_or("a central directory past 2^64")?;
    if cd_end > end.records_start {
        return Err(format!(
            "its central directory ({} bytes at {}) runs past the end records at {}",
            end.cd_size, end.cd_start, end.records_start
        ));
    }
    if end.count.checked_mul(CENTRAL_LEN).is_none_or(|n| n > end.cd_size) {
        return Err(format!(
            "it claims {} entries, but its central directory of {} bytes holds at most {}",
            end.count,
            end.cd_size,
            end.cd_size / CENTRAL_LEN
        ));
    }
    let mut dir = Directory { entries: Vec::new(), start: end.cd_start };
    r.seek(SeekFrom::Start(end.cd_start)).map_err(io_err)?;
    let mut cd = BufReader::with_capacity(1 << 16, &mut *r).take(end.cd_size);
    let mut names = HashSet::new();
    for i in 0..end.count {
        let entry = read_central(&mut cd, end.cd_start).map_err(|e| format!("entry #{i}: {e}"))?;
        if !names.insert(entry.name.clone()) {
            return Err(format!("the name {:?} is stored twice", entry.name));
        }
        dir.entries.push(entry);
    }
    drop(names);
    check_data(r, &mut dir)?;
    Ok(dir)
}

/// What the end records say.
struct End {
    count: u64,
    cd_start: u64,
    cd_size: u64,
    /// The first end record (ZIP64 or not): the directory must end before it.
    records_start: u64,
}

fn io_err(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "truncated".to_string()
    } else {
        format!("cannot read: {e}")
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> Result<(), String> {
    r.seek(SeekFrom::Start(at)).map_err(io_err)?;
    r.read_exact(buf).map_err(io_err)
}

/// The last end-of-central-directory record (the one the `zip` crate tries first) and,
/// when it points to them, the ZIP64 locator and record, each exactly where it must be.
fn find_end<R: Read + Seek>(r: &mut R, len: u64) -> Result<End, String> {
    if len < EOCD_LEN {
        return Err(format!("{len} bytes: too short to be a zip"));
    }
    let tail_len = len.min(EOCD_LEN + MAX_COMMENT);
    let tail_start = len - tail_len;
    let mut tail = vec![0u8; tail_len as usize];
    read_at(r, tail_start, &mut tail)?;
    let at = (0..=tail.len() - EOCD_LEN as usize)
        .rev()
        .find(|&i| tail[i..i + 4] == EOCD_SIG)
        .ok_or("no end-of-central-directory record (not a zip, or truncated)")?;
    let eocd = &tail[at..];
    let eocd_pos = tail_start + at as u64;
    let (disk, cd_disk) = (u16_at(eocd, 4), u16_at(eocd, 6));
    let (on_disk, total) = (u16_at(eocd, 8), u16_at(eocd, 10));
    let (cd_size, cd_start) = (u32_at(eocd, 12), u32_at(eocd, 16));
    if u64::from(u16_at(eocd, 20)) > eocd.len() as u64 - EOCD_LEN {
        return Err("its end record's comment runs past the end of the file".into());
    }
    // As the `zip` crate decides: ZIP64 when a field is saturated and a locator is there.
    let may_be_64 = total == u16::MAX || cd_start == u32::MAX;
    let mut locator = [0u8; LOCATOR_LEN as usize];
    let is_64 = may_be_64
        && eocd_pos >= LOCATOR_LEN
        && read_at(r, eocd_pos - LOCATOR_LEN, &mut locator).is_ok()
        && locator[..4] == LOCATOR_SIG;
    if !is_64 {
        if disk != 0 || cd_disk != 0 || on_disk != total {
            return Err("a multi-disk zip (not supported)".into());
        }
        return Ok(End {
            count: total.into(),
            cd_start: cd_start.into(),
            cd_size: cd_size.into(),
            records_start: eocd_pos,
        });
    }
    let locator_pos = eocd_pos - LOCATOR_LEN;
    let eocd64_pos = u64_at(&locator, 8);
    if u32_at(&locator, 4) != 0 || u32_at(&locator, 16) > 1 {
        return Err("a multi-disk zip (not supported)".into());
    }
    if eocd64_pos.checked_add(EOCD64_LEN).is_none_or(|e| e > locator_pos) {
        return Err(format!(
            "its ZIP64 end record is said to be at {eocd64_pos}, which leaves no room for it \
             before its locator at {locator_pos}"
        ));
    }
    let mut rec = [0u8; EOCD64_LEN as usize];
    read_at(r, eocd64_pos, &mut rec)?;
    if rec[..4] != EOCD64_SIG {
        return Err(format!("no ZIP64 end record at {eocd64_pos}, where its locator says"));
    }
    // The record must end where its locator starts (a longer one carries data the `zip`
    // crate would read into memory: at most 64 KiB here).
    let record_len = u64_at(&rec, 4).checked_add(12);
    if record_len != Some(locator_pos - eocd64_pos) || locator_pos - eocd64_pos > 1 << 16 {
        return Err("its ZIP64 end record's length does not match its place".into());
    }
    let (made_by, needed) = (u16_at(&rec, 12), u16_at(&rec, 14));
    let (disk, cd_disk) = (u32_at(&rec, 16), u32_at(&rec, 20));
    let (on_disk, total) = (u64_at(&rec, 24), u64_at(&rec, 32));
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err("a multi-disk zip (not supported)".into());
    }
    if needed > made_by {
        return Err("its ZIP64 end record needs a newer version than the one that wrote it".into());
    }
    Ok(End {
        count: total,
        cd_start: u64_at(&rec, 48),
        cd_size: u64_at(&rec, 40),
        records_start: eocd64_pos,
    })
}

/// Reads one central directory record.
fn read_central(cd: &mut impl Read, cd_start: u64) -> Result<Entry, String> {
    let mut rec = [0u8; CENTRAL_LEN as usize];
    cd.read_exact(&mut rec).map_err(|_| "the central directory ends early".to_string())?;
    if rec[..4] != CENTRAL_SIG {
        return Err("not a central directory record where one should be".into());
    }
    let flags = u16_at(&rec, 8);
    let method = u16_at(&rec, 10);
    let mut compressed = u64::from(u32_at(&rec, 20));
    let mut size = u64::from(u32_at(&rec, 24));
    let (name_len, extra_len, comment_len) =
        (u16_at(&rec, 28) as usize, u16_at(&rec, 30) as usize, u16_at(&rec, 32) as usize);
    let mut header_start = u64::from(u32_at(&rec, 42));
    let mut var = vec![0u8; name_len + extra_len + comment_len];
    cd.read_exact(&mut var).map_err(|_| "the central directory ends early".to_string())?;
    let raw_name = &var[..name_len];
    let name = match std::str::from_utf8(raw_name) {
        // Without the UTF-8 flag the name is CP437, which agrees with UTF-8 on ASCII only.
        Ok(n) if flags & (1 << 11) != 0 || n.is_ascii() => n.to_string(),
        _ => return Err(format!("the name {:?} is not UTF-8", String::from_utf8_lossy(raw_name))),
    };
    let with_name = |what: &str| format!("{name:?}: {what}");
    if flags & 1 != 0 {
        return Err(with_name("encrypted (not supported)"));
    }
    if method != 0 && method != 8 {
        return Err(with_name(&format!("compression method {method} (not supported)")));
    }
    parse_extra(
        &var[name_len..name_len + extra_len],
        &mut size,
        &mut compressed,
        &mut header_start,
    )
    .map_err(|e| with_name(&e))?;
    if header_start >= cd_start {
        return Err(with_name("its data are said to start after the central directory"));
    }
    let most = if method == 0 {
        compressed
    } else {
        compressed.saturating_mul(MAX_RATIO).saturating_add(RATIO_SLACK)
    };
    if size > most {
        return Err(with_name(&format!(
            "it claims to inflate {compressed} bytes to {size}, more than they can hold"
        )));
    }
    Ok(Entry { name, header_start, data_start: 0, compressed, size })
}

/// The extra fields of a central record, walked as the `zip` crate walks them (so that it
/// cannot fail where this passes): the ZIP64 sizes and offset taken, the fields it parses
/// checked as it checks them, the ones it would act on in ways not wanted here refused.
fn parse_extra(
    extra: &[u8],
    size: &mut u64,
    compressed: &mut u64,
    header_start: &mut u64,
) -> Result<(), String> {
    const SAT: u64 = u32::MAX as u64;
    let mut at = 0usize;
    let need = |at: usize, n: usize| {
        if at + n <= extra.len() {
            Ok(())
        } else {
            Err("an extra field runs past its end".to_string())
        }
    };
    while at < extra.len() {
        need(at, 4)?;
        let (kind, len) = (u16_at(extra, at), u16_at(extra, at + 2) as usize);
        at += 4;
        need(at, len)?;
        match kind {
            0x0001 => {
                let mut field = at;
                for value in [&mut *size, &mut *compressed, &mut *header_start] {
                    if len >= 24 || *value == SAT {
                        need(field, 8)?;
                        *value = u64_at(extra, field);
                        field += 8;
                    }
                }
                if field > at + len {
                    return Err("its ZIP64 extra field is the wrong length".into());
                }
                at += len;
            }
            0x000a => {
                let ok = len == 32 && u16_at(extra, at + 4) == 1 && u16_at(extra, at + 6) == 24;
                if !ok {
                    return Err("an NTFS extra field of an unsupported form".into());
                }
                at += len;
            }
            0x5455 => {
                // The `zip` crate reads only the times the flags announce, whatever the
                // length says, and goes on from there.
                need(at, 1)?;
                let flags = extra[at];
                let mut used = 1;
                if len != 5 && len != 1 + 4 * flags.count_ones() as usize {
                    return Err("an extended timestamp whose flags and length disagree".into());
                }
                if flags & 0b1111_1000 != 0 {
                    return Err("an extended timestamp of an unsupported kind".into());
                }
                used += 4 * usize::from(flags & 1 != 0 || len == 5);
                used += 4 * usize::from(flags & 2 != 0 && len > 5);
                used += 4 * usize::from(flags & 4 != 0 && len > 5);
                need(at, used)?;
                at += used;
            }
            0x9901 | 0x6375 | 0x7075 => {
                return Err(format!("extra field {kind:#06x} (encryption or a second name)"));
            }
            _ => at += len,
        }
    }
    Ok(())
}

/// Each entry's local header read for where its data start; data inside the file, before
/// the directory, and never overlapping another entry's.
fn check_data<R: Read + Seek>(r: &mut R, dir: &mut Directory) -> Result<(), String> {
    let mut header = [0u8; LOCAL_LEN as usize];
    for e in &mut dir.entries {
        read_at(r, e.header_start, &mut header).map_err(|why| format!("{:?}: {why}", e.name))?;
        if header[..4] != LOCAL_SIG {
            return Err(format!("{:?}: no local header where the directory says", e.name));
        }
        let vars = u64::from(u16_at(&header, 26)) + u64::from(u16_at(&header, 28));
        e.data_start = e.header_start + LOCAL_LEN + vars;
        if e.data_start.checked_add(e.compressed).is_none_or(|end| end > dir.start) {
            return Err(format!(
                "{:?}: its {} bytes of data run past the start of the central directory",
                e.name, e.compressed
            ));
        }
    }
    let mut order: Vec<usize> = (0..dir.entries.len()).collect();
    order.sort_by_key(|&i| dir.entries[i].header_start);
    for pair in order.windows(2) {
        let (a, b) = (&dir.entries[pair[0]], &dir.entries[pair[1]]);
        if b.header_start < a.data_start + a.compressed {
            return Err(format!(
                "the data of {:?} and {:?} overlap (the same bytes read twice: a zip bomb)",
                a.name, b.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (n, b) in files {
            z.start_file(*n, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(b).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    #[test]
    fn a_sound_zip_opens_with_its_entries() {
        let bytes = zip_of(&[("a", b"hello"), ("b/c", &[7u8; 100_000])]);
        let (archive, dir) = open(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 2);
        assert_eq!(dir.entries[1].name, "b/c");
        assert_eq!(dir.entries[1].size, 100_000);
        assert!(dir.entries[1].compressed < 1000);
    }

    #[test]
    fn zip64_records_and_fields_are_read() {
        // More than 65,535 entries: ZIP64 end records; `large_file`: ZIP64 extra fields.
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let big = zip::write::SimpleFileOptions::default().large_file(true);
        z.start_file("big", big).unwrap();
        z.write_all(&[1u8; 5000]).unwrap();
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..70_000 {
            z.start_file(format!("f{i}"), opts).unwrap();
        }
        let bytes = z.finish().unwrap().into_inner();
        let (archive, dir) = open(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 70_001);
        assert_eq!((dir.entries[0].name.as_str(), dir.entries[0].size), ("big", 5000));
    }

    #[test]
    fn bad_ends_are_refused_without_the_zip_crate() {
        assert!(open(Cursor::new(b"PK".to_vec())).unwrap_err().contains("too short"));
        assert!(open(Cursor::new(vec![0u8; 100])).unwrap_err().contains("no end-of-central"));
        let good = zip_of(&[("a", b"hello")]);
        let mut cut = good.clone();
        cut.drain(..10);
        assert!(open(Cursor::new(cut)).is_err());
        // An end record claiming more entries than its directory can hold.
        let mut many = good;
        let eocd = many.len() - 22;
        many[eocd + 8..eocd + 12].copy_from_slice(&[0xfe, 0xff, 0xfe, 0xff]);
        assert!(open(Cursor::new(many)).unwrap_err().contains("claims 65534 entries"));
    }
}
