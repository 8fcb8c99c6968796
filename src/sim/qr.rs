//! QR codes as the upstream shows them: the raw pairing text, and a real PNG of it.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Pixels per QR module and the quiet zone around the code, in modules.
const SCALE: usize = 6;
const QUIET: usize = 4;

/// The text a phone would read from the code: WhatsApp Web's `2@...,...,...` shape, fixed for
/// a given code of a given session run.
pub fn raw_value(session: &str, generation: u64, index: u32) -> String {
    let part = |salt: &str| {
        let digest = Sha256::digest(format!("{session}/{generation}/{index}/{salt}"));
        base64::engine::general_purpose::STANDARD.encode(digest)
    };
    format!(
        "2@{},{},{},{}",
        part("ref"),
        part("noise"),
        part("identity"),
        part("adv")
    )
}

/// A grayscale PNG of the QR code for `value`.
pub fn png(value: &str) -> anyhow::Result<Vec<u8>> {
    let code = qrcode::QrCode::new(value.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_png_is_a_png_of_the_right_size() {
        let value = super::raw_value("default", 1, 0);
        let png = super::png(&value).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % super::SCALE as u32, 0);
        assert!(info.width > 21 * super::SCALE as u32);
    }
}
