//! Which encoding a text contact list is in, decided from the whole file, and the first byte
//! that encoding cannot explain.
//!
//! A sample is not enough: one stray byte early in a UTF-8 list made a sample-based guess read
//! every name as GB18030, and a stray byte late in the file became a silent U+FFFD in a "valid"
//! row. So the whole file is decoded once, without replacement, before a row is read; a byte
//! that the chosen encoding does not explain is an error naming where it is, and no row of such
//! a list is ever dialled. Used by `contacts` (the reader) and `suppress` (do-not-call lists).

use encoding_rs::{Encoding, GB18030, UTF_8, UTF_16BE, UTF_16LE};
use std::io::{Read, Seek, SeekFrom};

/// How an encoding was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Bom,
    Campaign,
    Detected,
}

/// The encoding of a file, or the first byte it cannot explain.
#[derive(Debug)]
pub struct Decision {
    pub encoding: &'static Encoding,
    pub source: Source,
    /// Byte offset (from the file's start) of the first byte the encoding does not explain.
    pub bad_byte: Option<u64>,
}

/// Why no encoding could be decided.
#[derive(Debug)]
pub enum Undecided {
    Io(std::io::Error),
    /// UTF-16 without a byte-order mark whose byte order cannot be told.
    Utf16WithoutBom,
}

const SAMPLE: usize = 64 * 1024;

/// Decides the encoding of a file from its start (`bom` is the encoding of a byte-order mark
/// there, `named` the campaign's `encoding:`). Reads the file to its end, a chunk at a time, at
/// most three times, and leaves it positioned anywhere.
pub fn decide(
    file: &mut (impl Read + Seek),
    bom: Option<(&'static Encoding, usize)>,
    named: Option<&'static Encoding>,
) -> Result<Decision, Undecided> {
    let (encoding, source, skip) = match (bom, named) {
        (Some((enc, len)), _) => (enc, Source::Bom, len as u64),
        (None, Some(enc)) => (enc, Source::Campaign, 0),
        (None, None) => match detect(file)? {
            // Detection read it all as valid UTF-8 already.
            Detected::CleanUtf8 => {
                return Ok(Decision {
                    encoding: UTF_8,
                    source: Source::Detected,
                    bad_byte: None,
                });
            }
            Detected::Guess(enc) => (enc, Source::Detected, 0),
        },
    };
    file.seek(SeekFrom::Start(skip)).map_err(Undecided::Io)?;
    let bad_byte = first_bad_byte(encoding, file)
        .map_err(Undecided::Io)?
        .map(|at| at + skip);
    Ok(Decision {
        encoding,
        source,
        bad_byte,
    })
}

/// [`decide`] on bytes in memory.
pub fn decide_bytes(
    bytes: &[u8],
    bom: Option<(&'static Encoding, usize)>,
    named: Option<&'static Encoding>,
) -> Decision {
    decide(&mut std::io::Cursor::new(bytes), bom, named).expect("reading memory cannot fail")
}

/// Whether `bytes` look like UTF-16 without a byte-order mark: text whose every other byte is
/// NUL. `None` if not, else the byte order (or an error if NULs sit on both sides).
pub fn utf16_without_bom(bytes: &[u8]) -> Option<Result<&'static Encoding, Undecided>> {
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let even = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    // ASCII-heavy UTF-16 (headers, digits, commas) has a NUL in most pairs; other text has none.
    let mostly = |n: usize| n * 10 >= pairs * 3;
    match (mostly(even), mostly(odd)) {
        (false, false) => None,
        (true, false) => Some(Ok(UTF_16BE)),
        (false, true) => Some(Ok(UTF_16LE)),
        (true, true) => Some(Err(Undecided::Utf16WithoutBom)),
    }
}

/// The encoding of a file without a byte-order mark.
///
/// Valid UTF-8 is UTF-8, except for the one case where GBK bytes are also valid UTF-8 and the
/// UTF-8 reading is no text anyone writes (`卢梅` in GBK reads `¬÷`). A file that is not
/// valid UTF-8 is UTF-8 with stray bytes if 99% of its bytes above ASCII are UTF-8's;
/// otherwise chardetng decides, told the text is probably Chinese.
enum Detected {
    /// Valid UTF-8 from end to end.
    CleanUtf8,
    /// An encoding to check the file against.
    Guess(&'static Encoding),
}

fn detect(file: &mut (impl Read + Seek)) -> Result<Detected, Undecided> {
    let io = Undecided::Io;
    let mut sample = Vec::with_capacity(SAMPLE);
    file.by_ref()
        .take(SAMPLE as u64)
        .read_to_end(&mut sample)
        .map_err(io)?;
    match utf16_without_bom(&sample) {
        Some(found) => return found.map(Detected::Guess),
        None => file.seek(SeekFrom::Start(0)).map_err(io)?,
    };
    let utf8 = Utf8Census::of(file).map_err(io)?;
    if utf8.invalid == 0 {
        if utf8.symbols_only && utf8.valid > 0 {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            if first_bad_byte(GB18030, file).map_err(io)?.is_none() {
                return Ok(Detected::Guess(GB18030));
            }
        }
        return Ok(Detected::CleanUtf8);
    }
    // GBK read as UTF-8 is mostly invalid (only a fifth of its characters happen to form
    // UTF-8 sequences); UTF-8 with a stray byte is nearly all valid.
    if utf8.valid > 0 && utf8.invalid * 100 <= utf8.valid {
        return Ok(Detected::Guess(UTF_8));
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    let mut chunk = vec![0; CHUNK];
    loop {
        let n = file.read(&mut chunk).map_err(io)?;
        detector.feed(&chunk[..n], n == 0);
        if n == 0 {
            break;
        }
    }
    let guess = detector.guess(Some(b"cn"), chardetng::Utf8Detection::Deny);
    // GBK text is also valid GB18030, which can encode everything: decode with the superset.
    Ok(Detected::Guess(if guess == encoding_rs::GBK {
        GB18030
    } else {
        guess
    }))
}

const CHUNK: usize = 256 * 1024;

/// What a file holds, read as UTF-8.
struct Utf8Census {
    /// Bytes of valid multi-byte sequences.
    valid: u64,
    /// Bytes that are no part of one.
    invalid: u64,
    /// Every character beyond ASCII is below U+0800 and no letter (`¬÷`, not `José` or `王`),
    /// and they come two or more together.
    symbols_only: bool,
    /// Non-ASCII characters in a row so far.
    run: u32,
}

impl Utf8Census {
    fn of(file: &mut impl Read) -> std::io::Result<Utf8Census> {
        let mut census = Utf8Census {
            valid: 0,
            invalid: 0,
            symbols_only: true,
            run: 0,
        };
        let mut buf = vec![0; CHUNK];
        // Bytes of a sequence cut by the end of the last chunk, carried into the next.
        let mut carried = 0;
        loop {
            let n = file.read(&mut buf[carried..])?;
            let end = carried + n;
            let mut rest = &buf[..end];
            loop {
                let (good, problem) = match std::str::from_utf8(rest) {
                    Ok(text) => (text, None),
                    Err(e) => (
                        std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
                        Some(e),
                    ),
                };
                census.count(good);
                let Some(e) = problem else {
                    rest = &[];
                    break;
                };
                rest = &rest[e.valid_up_to()..];
                match e.error_len() {
                    Some(bad) => {
                        census.invalid += bad as u64;
                        rest = &rest[bad..];
                    }
                    // Cut at the chunk's end: finish it with the next chunk, or it is bad.
                    None if n > 0 => break,
                    None => {
                        census.invalid += rest.len() as u64;
                        rest = &[];
                        break;
                    }
                }
            }
            carried = rest.len();
            let start = end - carried;
            buf.copy_within(start..end, 0);
            if n == 0 {
                census.symbols_only &= census.run != 1;
                return Ok(census);
            }
        }
    }

    fn count(&mut self, text: &str) {
        let bytes = text.as_bytes();
        // Counted bytewise, which the compiler vectorises: a million rows are 60 MB.
        self.valid += bytes.iter().filter(|&&b| b >= 0x80).count() as u64;
        // A lead byte of three or four bytes is a character beyond U+07FF, such as Chinese.
        if self.symbols_only && bytes.iter().any(|&b| b >= 0xE0) {
            self.symbols_only = false;
        }
        if self.symbols_only && !text.is_ascii() {
            for c in text.chars() {
                if c.is_ascii() {
                    // A lone symbol (`¥100`, `37°C`) is text someone wrote; GBK read as UTF-8
                    // gives one symbol a Chinese character, and names have two or more.
                    if self.run == 1 {
                        self.symbols_only = false;
                    }
                    self.run = 0;
                } else if c.is_alphabetic() {
                    self.symbols_only = false;
                } else {
                    self.run += 1;
                }
            }
        }
    }
}

/// [`first_bad_byte`] for UTF-8, validated in place rather than decoded into a copy.
fn first_bad_utf8(file: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut buf = vec![0; CHUNK];
    let mut offset = 0u64;
    let mut carried = 0;
    loop {
        let n = file.read(&mut buf[carried..])?;
        let end = carried + n;
        match std::str::from_utf8(&buf[..end]) {
            Ok(_) if n == 0 => return Ok(None),
            Ok(_) => carried = 0,
            Err(e) if e.error_len().is_some() || n == 0 => {
                return Ok(Some(offset + e.valid_up_to() as u64));
            }
            // A sequence cut by the chunk's end: carried into the next read.
            Err(e) => {
                let cut = e.valid_up_to();
                buf.copy_within(cut..end, 0);
                carried = end - cut;
                offset += cut as u64;
                continue;
            }
        }
        if n == 0 {
            return Ok(None);
        }
        offset += end as u64;
    }
}

/// The offset (from where `file` is now) of the first byte `encoding` cannot decode, if any.
fn first_bad_byte(
    encoding: &'static Encoding,
    file: &mut impl Read,
) -> std::io::Result<Option<u64>> {
    if encoding == UTF_8 {
        return first_bad_utf8(file);
    }
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut buf = vec![0; CHUNK];
    let mut out = String::with_capacity(CHUNK * 3);
    // Bytes handed to the decoder so far: a malformed sequence ends `after` bytes before it,
    // even one begun in an earlier chunk or cut off by the end of the file.
    let mut consumed = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        let last = n == 0;
        let mut read = 0;
        loop {
            out.clear();
            let (result, used) =
                decoder.decode_to_string_without_replacement(&buf[read..n], &mut out, last);
            read += used;
            consumed += used as u64;
            match result {
                encoding_rs::DecoderResult::InputEmpty => break,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(bad, after) => {
                    let at = consumed.saturating_sub(u64::from(after) + u64::from(bad));
                    return Ok(Some(at));
                }
            }
        }
        if last {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stray_byte_is_found_where_it_is() {
        let mut text = "name,phone\n王芳,13800138000\n".repeat(1_000).into_bytes();
        text.extend_from_slice("王芳".as_bytes());
        let at = text.len();
        text.push(0xFF);
        text.extend_from_slice(",13800138000\n".as_bytes());
        let d = decide_bytes(&text, None, None);
        assert_eq!(d.encoding, UTF_8);
        assert_eq!(d.source, Source::Detected);
        assert_eq!(d.bad_byte, Some(at as u64));
    }

    #[test]
    fn gbk_whose_bytes_are_valid_utf8_is_gbk() {
        let (bytes, _, _) = encoding_rs::GBK.encode("name,phone\r\n卢梅,13800138000\r\n");
        assert!(std::str::from_utf8(&bytes).is_ok());
        assert_eq!(decide_bytes(&bytes, None, None).encoding, GB18030);
        assert_eq!(decide_bytes(&bytes, None, None).bad_byte, None);
        let latin = "name,phone\nJosé,13800138000\n".as_bytes();
        assert_eq!(decide_bytes(latin, None, None).encoding, UTF_8);
        let price = "name,phone,fee\nWang,13800138000,¥100\n".as_bytes();
        assert_eq!(decide_bytes(price, None, None).encoding, UTF_8);
    }

    #[test]
    fn a_sequence_cut_by_the_end_of_the_file_is_found_where_it_starts() {
        let mut bytes = "name,phone\n王芳,1\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<_>>();
        bytes.push(0x41);
        let d = decide_bytes(&bytes, None, Some(UTF_16LE));
        assert_eq!(d.bad_byte, Some(bytes.len() as u64 - 1));
    }

    #[test]
    fn gb18030_errors_are_found() {
        let mut bytes = GB18030.encode("name,phone\n王芳,1\n").0.into_owned();
        let at = bytes.len();
        bytes.extend_from_slice(&[0xFF, b'\n']);
        let d = decide_bytes(&bytes, None, Some(GB18030));
        assert_eq!(d.bad_byte, Some(at as u64));
    }
}
