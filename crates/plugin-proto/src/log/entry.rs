//! The log entry stream: the protobuf `LogEntry` Docker writes to a log
//! driver's FIFO and reads back from `LogDriver.ReadLogs`, encoded and
//! decoded by hand, and its 4-byte length framing (see the
//! [`log`](crate::log) module documentation for the wire format).
//!
//! **What it must never do:** IO, or panic on any input: every length and
//! varint is checked, and a frame longer than its limit is an error before
//! anything is allocated for it.

use crate::GoTime;

/// One log message, as the daemon writes it to the FIFO and reads it back
/// from `ReadLogs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// [`SOURCE_STDOUT`](super::SOURCE_STDOUT) or
    /// [`SOURCE_STDERR`](super::SOURCE_STDERR). Protobuf strings are not
    /// checked for UTF-8 by Docker; invalid bytes decode as U+FFFD here.
    pub source: String,
    /// The time, in nanoseconds since the Unix epoch.
    pub time_nano: i64,
    /// The line, without its trailing newline.
    pub line: Vec<u8>,
    /// The line was cut (it goes on in the next entries).
    pub partial: bool,
    /// Where a cut line's piece belongs.
    pub partial_log_metadata: Option<PartialLogEntryMetadata>,
}

/// Identifies the pieces of a line the daemon cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PartialLogEntryMetadata {
    /// This is the last piece.
    pub last: bool,
    /// The same for every piece of one line.
    pub id: String,
    /// The piece's position, from 1.
    pub ordinal: i32,
}

/// The size of a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// The longest frame body [`decode_frame`] accepts: 1 MiB. The daemon cuts
/// lines at 16 KiB, so real entries are far smaller.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

/// Why a log entry or frame could not be read or written. The protobuf
/// texts are those of Docker's generated decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The length prefix exceeds the limit.
    #[error("log entry frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The message stopped inside a field.
    #[error("unexpected EOF")]
    Truncated,
    /// A varint longer than ten bytes.
    #[error("proto: integer overflow")]
    VarintOverflow,
    /// A length that does not fit in memory.
    #[error("proto: negative length found during unmarshaling")]
    InvalidLength,
    /// Field number zero or out of range.
    #[error("proto: {message}: illegal tag {field} (wire type {wire_type})")]
    IllegalTag {
        /// `LogEntry` or `PartialLogEntryMetadata`.
        message: &'static str,
        /// The field number.
        field: u64,
        /// The wire type.
        wire_type: u8,
    },
    /// A known field with the wrong wire type.
    #[error("proto: wrong wireType = {wire_type} for field {field}")]
    WrongWireType {
        /// The field's Go name (`Source`, `TimeNano`, …).
        field: &'static str,
        /// The wire type found.
        wire_type: u8,
    },
    /// Groups (wire types 3 and 4) and the reserved types 6 and 7.
    #[error("proto: illegal wireType {0}")]
    UnsupportedWireType(u8),
}

/// The result of [`decode_frame`] on a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame was at the start of the buffer.
    Entry {
        /// The decoded entry.
        entry: LogEntry,
        /// How many bytes of the buffer the frame took.
        consumed: usize,
    },
    /// The buffer holds only part of a frame.
    Incomplete {
        /// How many bytes the buffer must hold, from its start, before
        /// decoding can go on (the header, then the whole frame).
        needed: usize,
    },
}

// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, LogError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(LogError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(LogError::VarintOverflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LogError> {
        let end = self.pos.checked_add(n).ok_or(LogError::InvalidLength)?;
        let bytes = self.buf.get(self.pos..end).ok_or(LogError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], LogError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| LogError::InvalidLength)?;
        if len > isize::MAX as usize {
            return Err(LogError::InvalidLength);
        }
        self.take(len)
    }

    /// The next field's number and wire type.
    fn key(&mut self, message: &'static str) -> Result<(u64, u8), LogError> {
        let key = self.varint()?;
        let (field, wire_type) = (key >> 3, (key & 7) as u8);
        // Docker's decoder converts the number to int32 and rejects <= 0.
        if field == 0 || field > i32::MAX as u64 {
            return Err(LogError::IllegalTag {
                message,
                field,
                wire_type,
            });
        }
        Ok((field, wire_type))
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), LogError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            other => Err(LogError::UnsupportedWireType(other)),
        }
    }
}

fn expect(wire_type: u8, want: u8, field: &'static str) -> Result<(), LogError> {
    if wire_type == want {
        Ok(())
    } else {
        Err(LogError::WrongWireType { field, wire_type })
    }
}

impl PartialLogEntryMetadata {
    fn encoded_len(&self) -> usize {
        let mut n = 0;
        if self.last {
            n += 2;
        }
        if !self.id.is_empty() {
            n += len_field_size(self.id.len());
        }
        if self.ordinal != 0 {
            n += 1 + varint_len(i64::from(self.ordinal) as u64);
        }
        n
    }

    fn encode(&self, out: &mut Vec<u8>) {
        if self.last {
            out.extend_from_slice(&[1 << 3 | VARINT, 1]);
        }
        if !self.id.is_empty() {
            put_len_field(out, 2, self.id.as_bytes());
        }
        if self.ordinal != 0 {
            out.push(3 << 3 | VARINT);
            // int32 is sign-extended to 64 bits on the wire.
            put_varint(out, i64::from(self.ordinal) as u64);
        }
    }

    /// Merges the fields in `bytes` into `self`, as protobuf merges a
    /// repeated embedded message.
    fn merge(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        while !r.done() {
            match r.key("PartialLogEntryMetadata")? {
                (1, wt) => {
                    expect(wt, VARINT, "Last")?;
                    self.last = r.varint()? != 0;
                }
                (2, wt) => {
                    expect(wt, LEN, "Id")?;
                    self.id = String::from_utf8_lossy(r.len_delimited()?).into_owned();
                }
                (3, wt) => {
                    expect(wt, VARINT, "Ordinal")?;
                    // int32 keeps the low 32 bits, as Go's decoder does.
                    self.ordinal = r.varint()? as u32 as i32;
                }
                (_, wt) => r.skip(wt)?,
            }
        }
        Ok(())
    }
}

impl LogEntry {
    /// The size of the protobuf encoding.
    pub fn encoded_len(&self) -> usize {
        let mut n = 0;
        if !self.source.is_empty() {
            n += len_field_size(self.source.len());
        }
        if self.time_nano != 0 {
            n += 1 + varint_len(self.time_nano as u64);
        }
        if !self.line.is_empty() {
            n += len_field_size(self.line.len());
        }
        if self.partial {
            n += 2;
        }
        if let Some(md) = &self.partial_log_metadata {
            n += len_field_size(md.encoded_len());
        }
        n
    }

    /// Appends the protobuf encoding (no frame header) to `out`: fields in
    /// number order, default values left out, as Docker's encoder writes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        if !self.source.is_empty() {
            put_len_field(out, 1, self.source.as_bytes());
        }
        if self.time_nano != 0 {
            out.push(2 << 3 | VARINT);
            put_varint(out, self.time_nano as u64);
        }
        if !self.line.is_empty() {
            put_len_field(out, 3, &self.line);
        }
        if self.partial {
            out.extend_from_slice(&[4 << 3 | VARINT, 1]);
        }
        if let Some(md) = &self.partial_log_metadata {
            out.push(5 << 3 | LEN);
            put_varint(out, md.encoded_len() as u64);
            md.encode(out);
        }
    }

    /// The protobuf encoding (no frame header).
    pub fn to_protobuf(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a protobuf `LogEntry` (no frame header). Unknown fields are
    /// skipped; for repeated fields the last wins and the metadata message
    /// merges, as protobuf specifies.
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, LogError> {
        let mut entry = LogEntry::default();
        let mut r = Reader { buf: bytes, pos: 0 };
        while !r.done() {
            match r.key("LogEntry")? {
                (1, wt) => {
                    expect(wt, LEN, "Source")?;
                    entry.source = String::from_utf8_lossy(r.len_delimited()?).into_owned();
                }
                (2, wt) => {
                    expect(wt, VARINT, "TimeNano")?;
                    entry.time_nano = r.varint()? as i64;
                }
                (3, wt) => {
                    expect(wt, LEN, "Line")?;
                    entry.line = r.len_delimited()?.to_vec();
                }
                (4, wt) => {
                    expect(wt, VARINT, "Partial")?;
                    entry.partial = r.varint()? != 0;
                }
                (5, wt) => {
                    expect(wt, LEN, "PartialLogMetadata")?;
                    let bytes = r.len_delimited()?;
                    entry
                        .partial_log_metadata
                        .get_or_insert_with(PartialLogEntryMetadata::default)
                        .merge(bytes)?;
                }
                (_, wt) => r.skip(wt)?,
            }
        }
        Ok(entry)
    }

    /// The entry's time.
    pub fn time(&self) -> GoTime {
        GoTime::from_unix_nanos(self.time_nano)
    }
}

/// Appends one frame (length prefix and entry) to `out`. Fails only for an
/// entry of 4 GiB or more, which the prefix cannot express.
pub fn encode_frame(entry: &LogEntry, out: &mut Vec<u8>) -> Result<(), LogError> {
    let len = entry.encoded_len();
    let prefix = u32::try_from(len).map_err(|_| LogError::FrameTooLarge {
        len: len as u64,
        max: u32::MAX as usize,
    })?;
    out.reserve(FRAME_HEADER_LEN + len);
    out.extend_from_slice(&prefix.to_be_bytes());
    entry.encode(out);
    Ok(())
}

/// Decodes the frame at the start of `buf`, with frames limited to
/// [`DEFAULT_MAX_FRAME_LEN`].
pub fn decode_frame(buf: &[u8]) -> Result<Frame, LogError> {
    decode_frame_with_limit(buf, DEFAULT_MAX_FRAME_LEN)
}

/// Decodes the frame at the start of `buf`; a length prefix above
/// `max_len` is an error as soon as the header is in.
pub fn decode_frame_with_limit(buf: &[u8], max_len: usize) -> Result<Frame, LogError> {
    let Some(header) = buf.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(Frame::Incomplete {
            needed: FRAME_HEADER_LEN,
        });
    };
    let len = u32::from_be_bytes(*header);
    let len_usize = usize::try_from(len).map_err(|_| LogError::InvalidLength)?;
    if len_usize > max_len {
        return Err(LogError::FrameTooLarge {
            len: u64::from(len),
            max: max_len,
        });
    }
    let total = FRAME_HEADER_LEN + len_usize;
    match buf.get(FRAME_HEADER_LEN..total) {
        None => Ok(Frame::Incomplete { needed: total }),
        Some(body) => Ok(Frame::Entry {
            entry: LogEntry::decode(body)?,
            consumed: total,
        }),
    }
}

/// A buffering decoder for an entry stream that arrives in pieces: push
/// bytes as they are read, take entries out.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [`DEFAULT_MAX_FRAME_LEN`] limit.
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_limit(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder rejecting frames longer than `max_len`.
    pub fn with_limit(max_len: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_len,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole entry, or `None` until more bytes are pushed. After
    /// an error the stream cannot be resynchronised.
    pub fn next_entry(&mut self) -> Result<Option<LogEntry>, LogError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        match decode_frame_with_limit(pending, self.max_len)? {
            Frame::Incomplete { .. } => {
                if self.start > 0 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                Ok(None)
            }
            Frame::Entry { entry, consumed } => {
                self.start += consumed;
                Ok(Some(entry))
            }
        }
    }

    /// Bytes pushed but not yet decoded. Non-zero at the end of a stream
    /// means it was cut inside a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{SOURCE_STDERR, SOURCE_STDOUT};

    fn entry() -> LogEntry {
        LogEntry {
            source: SOURCE_STDERR.into(),
            time_nano: 1_700_000_000_123_456_789,
            line: b"hello \xff world".to_vec(),
            partial: true,
            partial_log_metadata: Some(PartialLogEntryMetadata {
                last: true,
                id: "p1".into(),
                ordinal: -3,
            }),
        }
    }

    #[test]
    fn protobuf_known_bytes() {
        // Hand-built from entry.proto: source=1 (LEN), time_nano=2 (VARINT),
        // line=3 (LEN), partial=4 (VARINT), partial_log_metadata=5 (LEN)
        // {last=1, id=2, ordinal=3}.
        let bytes = [
            0x0a, 6, b's', b't', b'd', b'o', b'u', b't', // source
            0x10, 0xac, 0x02, // time_nano = 300
            0x1a, 2, b'h', b'i', // line
            0x20, 0x01, // partial
            0x2a, 7, 0x08, 0x01, 0x12, 1, b'x', 0x18, 0x02, // metadata
        ];
        let e = LogEntry::decode(&bytes).unwrap();
        assert_eq!(
            e,
            LogEntry {
                source: "stdout".into(),
                time_nano: 300,
                line: b"hi".to_vec(),
                partial: true,
                partial_log_metadata: Some(PartialLogEntryMetadata {
                    last: true,
                    id: "x".into(),
                    ordinal: 2
                }),
            }
        );
        assert_eq!(e.to_protobuf(), bytes);
        assert_eq!(e.encoded_len(), bytes.len());
        assert_eq!(LogEntry::default().to_protobuf(), Vec::<u8>::new());
        assert_eq!(LogEntry::decode(&[]).unwrap(), LogEntry::default());
        // A negative time is a ten-byte varint.
        let neg = LogEntry {
            time_nano: -1,
            ..LogEntry::default()
        };
        assert_eq!(
            neg.to_protobuf(),
            [
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        assert_eq!(LogEntry::decode(&neg.to_protobuf()).unwrap(), neg);
        assert_eq!(
            GoTime::from_unix_nanos(entry().time_nano).to_string(),
            entry().time().to_string()
        );
    }

    #[test]
    fn protobuf_skips_unknown_fields_and_merges() {
        // no checklist item: entry.proto decoding rules (module docs)
        let mut bytes = vec![
            0x32, 3, 0x0a, 1, b'k', // field 6 (attrs in the daemon's internal proto)
            0x38, 0x96, 0x01, // field 7 varint
            0x41, 1, 2, 3, 4, 5, 6, 7, 8, // field 8 fixed64
            0x4d, 1, 2, 3, 4, // field 9 fixed32
            0x0a, 1, b'a', 0x0a, 1, b'b', // source twice: last wins
        ];
        // Metadata twice: merged.
        bytes.extend_from_slice(&[0x2a, 2, 0x08, 0x01, 0x2a, 3, 0x12, 1, b'z']);
        let e = LogEntry::decode(&bytes).unwrap();
        assert_eq!(e.source, "b");
        let md = e.partial_log_metadata.unwrap();
        assert!(md.last);
        assert_eq!(md.id, "z");
        // Invalid UTF-8 in a string field does not fail.
        let e = LogEntry::decode(&[0x0a, 1, 0xff]).unwrap();
        assert_eq!(e.source, "\u{fffd}");
    }

    #[test]
    fn protobuf_garbage_is_an_error_not_a_panic() {
        // no checklist item: Docker's generated decoder errors, never a panic
        let cases: &[(&[u8], LogError)] = &[
            (&[0x0a], LogError::Truncated),
            (&[0x0a, 5, b'a'], LogError::Truncated),
            (&[0x10], LogError::Truncated),
            (&[0x10, 0x80], LogError::Truncated),
            (
                &[
                    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                LogError::VarintOverflow,
            ),
            (
                &[0x00],
                LogError::IllegalTag {
                    message: "LogEntry",
                    field: 0,
                    wire_type: 0,
                },
            ),
            (
                &[0x08, 0x01],
                LogError::WrongWireType {
                    field: "Source",
                    wire_type: 0,
                },
            ),
            (
                &[0x12, 0x00],
                LogError::WrongWireType {
                    field: "TimeNano",
                    wire_type: 2,
                },
            ),
            (&[0x4b], LogError::UnsupportedWireType(3)),
            (&[0x4c], LogError::UnsupportedWireType(4)),
            (&[0x4e], LogError::UnsupportedWireType(6)),
            (
                &[0x0b],
                LogError::WrongWireType {
                    field: "Source",
                    wire_type: 3,
                },
            ),
            (
                &[0x2a, 2, 0x10, 0x01],
                LogError::WrongWireType {
                    field: "Id",
                    wire_type: 0,
                },
            ),
            (
                &[0x2a, 1, 0x00],
                LogError::IllegalTag {
                    message: "PartialLogEntryMetadata",
                    field: 0,
                    wire_type: 0,
                },
            ),
            (&[0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f], LogError::Truncated),
            (&[0x41, 1, 2], LogError::Truncated),
        ];
        for (bytes, want) in cases {
            assert_eq!(&LogEntry::decode(bytes).unwrap_err(), want, "{bytes:02x?}");
        }
        assert_eq!(
            LogError::WrongWireType {
                field: "Source",
                wire_type: 0
            }
            .to_string(),
            "proto: wrong wireType = 0 for field Source"
        );
    }

    #[test]
    fn frames_round_trip_and_report_need_more() {
        // no checklist item: the 4-byte big-endian length framing (module docs)
        let mut stream = Vec::new();
        encode_frame(&entry(), &mut stream).unwrap();
        encode_frame(&LogEntry::default(), &mut stream).unwrap();
        let first_len = FRAME_HEADER_LEN + entry().encoded_len();
        assert_eq!(&stream[..4], &(entry().encoded_len() as u32).to_be_bytes());
        assert_eq!(&stream[first_len..], [0, 0, 0, 0]);

        for cut in 0..first_len {
            let want = if cut < 4 { 4 } else { first_len };
            assert_eq!(
                decode_frame(&stream[..cut]).unwrap(),
                Frame::Incomplete { needed: want },
                "cut at {cut}"
            );
        }
        let Frame::Entry { entry: e, consumed } = decode_frame(&stream).unwrap() else {
            panic!("expected an entry");
        };
        assert_eq!((e, consumed), (entry(), first_len));
        let Frame::Entry { entry: e, consumed } = decode_frame(&stream[first_len..]).unwrap()
        else {
            panic!("expected an entry");
        };
        assert_eq!((e, consumed), (LogEntry::default(), 4));
    }

    #[test]
    fn hand_built_frame_decodes() {
        // [len=9][source="fixture"] — the frame a Go LogEntryEncoder writes
        // for LogEntry{Source: "fixture"}.
        let frame = [
            0, 0, 0, 9, 0x0a, 7, b'f', b'i', b'x', b't', b'u', b'r', b'e',
        ];
        assert_eq!(
            decode_frame(&frame).unwrap(),
            Frame::Entry {
                entry: LogEntry {
                    source: "fixture".into(),
                    ..LogEntry::default()
                },
                consumed: frame.len()
            }
        );
        let mut out = Vec::new();
        encode_frame(
            &LogEntry {
                source: "fixture".into(),
                ..LogEntry::default()
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(out, frame);
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        // no checklist item: frame length cap (module docs)
        assert_eq!(
            decode_frame(&[0xff, 0xff, 0xff, 0xff]).unwrap_err(),
            LogError::FrameTooLarge {
                len: u64::from(u32::MAX),
                max: DEFAULT_MAX_FRAME_LEN
            }
        );
        assert_eq!(
            decode_frame_with_limit(&[0, 0, 0, 9], 8).unwrap_err(),
            LogError::FrameTooLarge { len: 9, max: 8 }
        );
        assert_eq!(
            decode_frame(&[0, 0, 0, 2, 0x0a, 5]).unwrap_err(),
            LogError::Truncated
        );
    }

    #[test]
    fn frame_decoder_handles_byte_at_a_time_input() {
        // no checklist item: framing over a stream read in pieces
        let entries = vec![
            entry(),
            LogEntry::default(),
            LogEntry {
                source: SOURCE_STDOUT.into(),
                line: vec![b'x'; 5000],
                ..LogEntry::default()
            },
        ];
        let mut stream = Vec::new();
        for e in &entries {
            encode_frame(e, &mut stream).unwrap();
        }
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &stream {
            dec.push(std::slice::from_ref(b));
            while let Some(e) = dec.next_entry().unwrap() {
                got.push(e);
            }
        }
        assert_eq!(got, entries);
        assert_eq!(dec.pending(), 0);
        dec.push(&[0, 0]);
        assert_eq!(dec.next_entry().unwrap(), None);
        assert_eq!(dec.pending(), 2);
        let mut small = FrameDecoder::with_limit(4);
        small.push(&[0, 0, 0, 5]);
        assert!(small.next_entry().is_err());
    }

    proptest::proptest! {
        #[test]
        fn protobuf_round_trips(
            source in "\\PC{0,12}",
            time_nano in proptest::prelude::any::<i64>(),
            line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            partial in proptest::prelude::any::<bool>(),
            md in proptest::option::of((proptest::prelude::any::<bool>(), "\\PC{0,8}", proptest::prelude::any::<i32>())),
        ) {
            // no checklist item: LogEntry protobuf round trip
            let e = LogEntry {
                source,
                time_nano,
                line,
                partial,
                partial_log_metadata: md.map(|(last, id, ordinal)| PartialLogEntryMetadata { last, id, ordinal }),
            };
            let bytes = e.to_protobuf();
            proptest::prop_assert_eq!(bytes.len(), e.encoded_len());
            proptest::prop_assert_eq!(LogEntry::decode(&bytes).unwrap(), e.clone());
            let mut framed = Vec::new();
            encode_frame(&e, &mut framed).unwrap();
            proptest::prop_assert_eq!(decode_frame(&framed).unwrap(), Frame::Entry { entry: e, consumed: framed.len() });
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            // crate invariant: parsers never panic
            let _ = LogEntry::decode(&bytes);
            let _ = decode_frame(&bytes);
            let mut dec = FrameDecoder::with_limit(32);
            dec.push(&bytes);
            while let Ok(Some(_)) = dec.next_entry() {}
        }
    }
}
