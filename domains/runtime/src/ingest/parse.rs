//! Turning records into rows: checking and parsing each field, and packing
//! rows into chunks for the writer.

use csv::ByteRecord;

use super::{RecordSource, TextEncoding};
use crate::error::{DomainError, Result};
use crate::ingest::quality::RowCounts;
use crate::store::load::{Chunk, ChunkCell as Cell};
use crate::values::schema::{ColumnKind, RowSchema};

/// Parsed rows per chunk sent to the writer, and chunks buffered ahead.
const CHUNK_ROWS: usize = 1024;
pub(super) const CHUNKS_AHEAD: usize = 8;

/// Reads every record of `source`, checks and parses it, counts the rules
/// checked row by row, and sends the rows in chunks; a refused record is
/// sent as the error that ends the load.
pub(super) fn parse_records(
    source: &mut (dyn RecordSource + Send),
    schema: &RowSchema,
    mapping: &[usize],
    counts: &std::sync::Mutex<RowCounts>,
    sender: std::sync::mpsc::SyncSender<Result<Chunk>>,
) -> Result<()> {
    let width = source.header().len();
    let columns = schema.columns.len();
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    let mut record = ByteRecord::new();
    let mut integers = vec![0i64; columns];
    let mut chunk = Chunk::with_capacity(CHUNK_ROWS, columns);
    let mut encoding = FileEncoding { decided: source.encoding().map(|known| (known.encoding(), 0)) };
    let outcome = (|| {
        while source.read(&mut record)? {
            let line = source.line();
            if record.len() != width {
                return Err(DomainError::Load(format!(
                    "{}: line {line}: expected {width} columns, found {}",
                    source.describe(),
                    record.len()
                )));
            }
            for ((&field, column), integer) in mapping.iter().zip(&schema.columns).zip(&mut integers) {
                let cell =
                    parse(&record[field], column.kind, column.amount, &mut chunk.text, &mut encoding, line)
                        .map_err(|reason| {
                        DomainError::Load(format!(
                            "{}: line {line}: column {}: {reason}",
                            source.describe(),
                            column.source_column
                        ))
                    })?;
                *integer = if let Cell::Integer(n) = cell { n } else { 0 };
                chunk.cells.push(cell);
            }
            counts.check(&integers);
            if chunk.row_count(columns) == CHUNK_ROWS {
                let full = std::mem::replace(&mut chunk, Chunk::with_capacity(CHUNK_ROWS, columns));
                if sender.send(Ok(full)).is_err() {
                    return Ok(()); // the writer stopped; its error tells why
                }
            }
        }
        Ok(())
    })();
    drop(counts);
    match outcome {
        Ok(()) => {
            let _ = sender.send(Ok(chunk));
            Ok(())
        }
        Err(error) => {
            let message = error.to_string();
            let _ = sender.send(Err(DomainError::Load(message)));
            Err(error)
        }
    }
}

/// The text encoding of one source, decided once by its first non-ASCII
/// text: UTF-8 if that text is UTF-8, otherwise EUC-KR (CP949), the usual
/// encoding of Korean extracts. Text later in the file that is not valid in
/// that encoding refuses the load.
#[derive(Debug, Default)]
struct FileEncoding {
    /// The encoding and the line that decided it.
    decided: Option<(&'static encoding_rs::Encoding, u64)>,
}

impl TextEncoding {
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::EucKr => encoding_rs::EUC_KR,
        }
    }
}

impl FileEncoding {
    /// Appends `raw`, trimmed and decoded, to `text`.
    fn decode_into(&mut self, raw: &[u8], line: u64, text: &mut String) -> std::result::Result<(), String> {
        if raw.is_ascii() {
            text.push_str(std::str::from_utf8(raw).map_err(|e| e.to_string())?.trim());
            return Ok(());
        }
        let utf8 = std::str::from_utf8(raw);
        let (encoding, decided_at) = *self.decided.get_or_insert_with(|| {
            (if utf8.is_ok() { encoding_rs::UTF_8 } else { encoding_rs::EUC_KR }, line)
        });
        let mismatch = || match decided_at {
            0 => format!("the text is not valid {} (the source's declared encoding)", encoding.name()),
            _ => format!(
                "the text is not valid {} (the file's encoding, decided by its first non-ASCII text on line \
                 {decided_at}); convert the file to one encoding",
                encoding.name()
            ),
        };
        if encoding == encoding_rs::UTF_8 {
            text.push_str(utf8.map_err(|_| mismatch())?.trim());
        } else {
            let (decoded, had_errors) = encoding.decode_without_bom_handling(raw);
            if had_errors {
                return Err(mismatch());
            }
            text.push_str(decoded.trim());
        }
        Ok(())
    }
}

/// Converts one field to the column's value; text goes into `text`,
/// decoded as the file's `encoding`. Numbers are read from the bytes
/// without a string in between.
fn parse(
    raw: &[u8],
    kind: ColumnKind,
    amount: bool,
    text: &mut String,
    encoding: &mut FileEncoding,
    line: u64,
) -> std::result::Result<Cell, String> {
    let trimmed = raw.trim_ascii();
    let shown = || String::from_utf8_lossy(trimmed).into_owned();
    match kind {
        ColumnKind::String => {
            let start = text.len();
            encoding.decode_into(raw, line, text)?;
            let offset = |n: usize| u32::try_from(n).map_err(|_| "a chunk's text passed 4 GiB".to_owned());
            Ok(Cell::Text(offset(start)?, offset(text.len())?))
        }
        ColumnKind::Integer => {
            let n: i64 = std::str::from_utf8(trimmed)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("`{}` is not a whole number", shown()))?;
            if amount && n < 0 {
                return Err(format!("negative amount {n}"));
            }
            Ok(Cell::Integer(n))
        }
        ColumnKind::Real => std::str::from_utf8(trimmed)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .map(Cell::Real)
            .ok_or_else(|| format!("`{}` is not a number", shown())),
        ColumnKind::Bool => match trimmed {
            b"1" | b"Y" | b"y" | b"true" => Ok(Cell::Integer(1)),
            b"0" | b"N" | b"n" | b"false" | b"" => Ok(Cell::Integer(0)),
            _ => Err(format!("`{}` is not Y/N", shown())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_ascii_text_decides_the_encoding_of_the_file() {
        let euc_kr = encoding_rs::EUC_KR.encode("서울").0.into_owned();
        let mut text = String::new();
        let mut utf8_file = FileEncoding::default();
        utf8_file.decode_into(b" plain ", 2, &mut text).unwrap();
        utf8_file.decode_into("부산".as_bytes(), 3, &mut text).unwrap();
        assert_eq!(
            utf8_file.decode_into(&euc_kr, 9, &mut text).unwrap_err(),
            "the text is not valid UTF-8 (the file's encoding, decided by its first non-ASCII text on line 3); \
             convert the file to one encoding"
        );
        let mut korean_file = FileEncoding::default();
        korean_file.decode_into(&euc_kr, 2, &mut text).unwrap();
        assert_eq!(text, "plain부산서울");
        let broken = [0xB0, 0xFF];
        assert!(
            korean_file
                .decode_into(&broken, 4, &mut text)
                .unwrap_err()
                .starts_with("the text is not valid EUC-KR")
        );
    }
}
