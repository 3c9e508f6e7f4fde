//! The documents around a fax: a PDF rendered to TIFF-F pages for sending (Ghostscript's
//! `tiffg4` device at fax resolution), the received TIFF-F turned into a PDF (libtiff's
//! `tiff2pdf`, which keeps the pages' G3/G4 data as it is: no re-encoding, small files), and a
//! page count read from a TIFF's directory chain.
//!
//! Why these tools: Ghostscript renders any PDF faithfully and writes fax TIFF directly at the
//! exact 1728-pixel line width T.4 needs; `tiff2pdf` is libtiff's own and understands the fax
//! resolutions (204 × 98 / 196 dpi), so received pages keep their aspect ratio.

use std::path::Path;
use std::process::Command;

/// Pages rendered from one document at most (a fax of more is refused).
pub const MAX_PAGES: u32 = 100;

/// Fine resolution: 204 × 196 dpi, 1728 pixels across (215 mm), US Letter tall.
const WIDTH_PX: u32 = 1728;
const LETTER_LINES_FINE: u32 = 2156;

/// The Ghostscript command that renders `pdf` into a multi-page TIFF-F `tiff` (T.6).
pub fn render_command(pdf: &Path, tiff: &Path) -> Command {
    let mut c = Command::new("gs");
    c.arg("-q")
        .arg("-dSAFER")
        .arg("-dBATCH")
        .arg("-dNOPAUSE")
        .arg("-dNOINTERPOLATE")
        .arg("-sDEVICE=tiffg4")
        .arg("-r204x196")
        .arg(format!("-g{WIDTH_PX}x{LETTER_LINES_FINE}"))
        .arg("-dFIXEDMEDIA")
        .arg("-dPDFFitPage")
        .arg(format!("-dLastPage={MAX_PAGES}"))
        .arg(format!("-sOutputFile={}", tiff.display()))
        .arg("--")
        .arg(pdf);
    c
}

/// The libtiff command that turns the received TIFF-F `tiff` into `pdf`.
pub fn pdf_command(tiff: &Path, pdf: &Path) -> Command {
    let mut c = Command::new("tiff2pdf");
    c.arg("-o").arg(pdf).arg(tiff);
    c
}

/// How many pages (image directories) a TIFF holds; None when it is not a TIFF. Reads only
/// the header and each directory's entry count and next-directory offset, bounds-checked.
pub fn count_pages(data: &[u8]) -> Option<u32> {
    let little = match data.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let mut offset = u32_at(4)? as usize;
    let mut pages = 0u32;
    let mut seen = std::collections::HashSet::new();
    while offset != 0 {
        // A loop in the chain (a hostile or broken file) ends the count.
        if !seen.insert(offset) || pages >= 10_000 {
            return None;
        }
        let entries = u16_at(offset)? as usize;
        pages += 1;
        offset = u32_at(offset + 2 + entries * 12)? as usize;
    }
    Some(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifd(entries: u16, next: u32) -> Vec<u8> {
        let mut v = entries.to_le_bytes().to_vec();
        v.extend(std::iter::repeat_n(0u8, entries as usize * 12));
        v.extend(next.to_le_bytes());
        v
    }

    #[test]
    fn counts_the_directory_chain_and_refuses_loops_and_junk() {
        // Header, IFD at 8 (1 entry, 18 bytes) -> IFD at 26 (0 entries) -> end.
        let mut t = b"II".to_vec();
        t.extend(42u16.to_le_bytes());
        t.extend(8u32.to_le_bytes());
        t.extend(ifd(1, 26));
        t.extend(ifd(0, 0));
        assert_eq!(count_pages(&t), Some(2));
        let mut looped = t.clone();
        looped[26 + 2..26 + 6].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(count_pages(&looped), None);
        assert_eq!(count_pages(&t[..20]), None);
        assert_eq!(count_pages(b"%PDF-1.4"), None);
        assert_eq!(count_pages(b""), None);
    }
}
