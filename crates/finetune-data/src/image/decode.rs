//! Decoding encoded images (JPEG, PNG, WebP, as the `image` crate reads them) into [`Image`]s,
//! converted to the channel count the model wants.

use super::{ColorMode, Image};

/// Decodes `bytes`; the error text says what went wrong (the caller adds file and row).
pub fn decode(bytes: &[u8], mode: ColorMode) -> Result<Image, String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot decode image: {e}"))?;
    Ok(match mode {
        ColorMode::Rgb => {
            let rgb = img.into_rgb8();
            let (w, h) = rgb.dimensions();
            Image::new(w, h, 3, rgb.into_raw())
        }
        ColorMode::Gray => {
            let g = img.into_luma8();
            let (w, h) = g.dimensions();
            Image::new(w, h, 1, g.into_raw())
        }
    })
}

/// Converts raw pixels to the wanted channel count: gray → RGB repeats the channel; RGB → gray
/// uses ITU-R 601-2 luma (PIL's `convert("L")`: `(299 R + 587 G + 114 B) / 1000`, rounded).
pub fn convert(img: Image, mode: ColorMode) -> Image {
    match (img.channels, mode) {
        (1, ColorMode::Rgb) => {
            let data = img.data.iter().flat_map(|&v| [v, v, v]).collect();
            Image::new(img.width, img.height, 3, data)
        }
        (3, ColorMode::Gray) => {
            let data = img
                .data
                .chunks_exact(3)
                .map(|p| {
                    ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8
                })
                .collect();
            Image::new(img.width, img.height, 1, data)
        }
        _ => img,
    }
}
