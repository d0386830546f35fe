//! A cloneable, buffered reader over one open file, reading at explicit offsets, so that
//! several threads can share one parsed zip directory (`ZipArchive` is `Clone` when its
//! reader is) instead of each parsing its own.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    sync::Arc,
};

const BUF: usize = 1 << 16;

/// See the module docs.
#[derive(Clone)]
pub(super) struct SharedFile {
    file: Arc<File>,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
}

impl SharedFile {
    /// Wraps `file`.
    pub(super) fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self { file: Arc::new(file), len, pos: 0, buf: Vec::new(), buf_start: 0, buf_len: 0 })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&*self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&*self.file, buf, offset)
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = (buf, offset);
            Err(io::Error::other("positional reads are not supported on this platform"))
        }
    }
}

impl Read for SharedFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let in_buf = self.pos >= self.buf_start && self.pos < self.buf_start + self.buf_len as u64;
        if !in_buf {
            if out.len() >= BUF {
                let n = self.read_at(out, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            if self.buf.len() < BUF {
                self.buf.resize(BUF, 0);
            }
            let mut filled = std::mem::take(&mut self.buf);
            let n = self.read_at(&mut filled, self.pos);
            self.buf = filled;
            self.buf_start = self.pos;
            self.buf_len = n?;
            if self.buf_len == 0 {
                return Ok(0);
            }
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf_len - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|n| n as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut f = SharedFile::new(File::open(&path).unwrap()).unwrap();
        let mut small = [0u8; 10];
        f.seek(SeekFrom::Start(70_000)).unwrap();
        f.read_exact(&mut small).unwrap();
        assert_eq!(&small, &data[70_000..70_010]);
        let mut g = f.clone();
        let mut rest = Vec::new();
        g.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[70_010..]);
        f.seek(SeekFrom::End(-5)).unwrap();
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 5..]);
    }
}
