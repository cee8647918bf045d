//! Pictures: recognising them, thumbnails and profile pictures, decoded with limits on size
//! and memory so a decompression bomb is refused, on a small pool so uploads never take every
//! thread.

use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};
use tokio::sync::Semaphore;

use crate::config::limits;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(
        "the picture is too large to process (at most {max} × {max} pixels)",
        max = limits::MAX_IMAGE_SIDE
    )]
    TooLarge,
    #[error("that is not a picture confab can read (JPEG, PNG, GIF or WebP)")]
    NotAnImage,
    #[error("picture processing failed: {0}")]
    Internal(String),
}

/// A file that decoded as a picture.
#[derive(Debug)]
pub struct Picture {
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Encoded,
}

/// An image encoded for serving.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

/// Runs picture work on the blocking pool, a few at a time.
#[derive(Clone)]
pub struct Media {
    permits: Arc<Semaphore>,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            permits: Arc::new(Semaphore::new(limits::CONCURRENT_DECODES)),
        }
    }
}

impl Media {
    /// The picture in the file at `path` with its thumbnail, or `None` if it is not a picture
    /// (any other file). A picture too large to decode safely is an error.
    pub async fn inspect(&self, path: PathBuf) -> Result<Option<Picture>, MediaError> {
        self.run(move || {
            let file =
                std::fs::File::open(&path).map_err(|e| MediaError::Internal(e.to_string()))?;
            match decode(BufReader::new(file)) {
                Ok((format, image)) => Ok(Some(Picture {
                    mime: mime_of(format),
                    width: image.width(),
                    height: image.height(),
                    thumbnail: thumbnail(&image)?,
                })),
                Err(MediaError::NotAnImage) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// A profile picture: the centre square of `bytes`, 256 × 256, as PNG. The original is not
    /// kept.
    pub async fn avatar(&self, bytes: Vec<u8>) -> Result<Encoded, MediaError> {
        self.run(move || {
            let (_, image) = decode(Cursor::new(bytes))?;
            let side = image.width().min(image.height());
            let square = image.crop_imm(
                (image.width() - side) / 2,
                (image.height() - side) / 2,
                side,
                side,
            );
            let size = limits::AVATAR_SIDE;
            let small = square.resize_exact(size, size, image::imageops::FilterType::Triangle);
            encode(&small.into_rgba8().into(), ImageFormat::Png)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
    ) -> Result<T, MediaError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| MediaError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| MediaError::Internal(e.to_string()))?
    }
}

/// Decodes a JPEG, PNG, GIF (first frame) or WebP within the limits.
fn decode(input: impl Read + Seek) -> Result<(ImageFormat, DynamicImage), MediaError> {
    let mut reader = ImageReader::new(BufReader::new(input))
        .with_guessed_format()
        .map_err(|e| MediaError::Internal(e.to_string()))?;
    let format = match reader.format() {
        Some(
            format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP),
        ) => format,
        _ => return Err(MediaError::NotAnImage),
    };
    reader.limits(decode_limits());
    match reader.decode() {
        Ok(image) => Ok((format, image)),
        Err(ImageError::Limits(_)) => Err(MediaError::TooLarge),
        Err(_) => Err(MediaError::NotAnImage),
    }
}

fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(limits::MAX_IMAGE_SIDE);
    limits.max_image_height = Some(limits::MAX_IMAGE_SIDE);
    limits.max_alloc = Some(limits::MAX_DECODE_BYTES);
    limits
}

/// At most [`limits::THUMBNAIL_SIDE`] on the longest side; PNG if it has transparency, else
/// JPEG.
fn thumbnail(image: &DynamicImage) -> Result<Encoded, MediaError> {
    let side = limits::THUMBNAIL_SIDE;
    let small = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image.clone()
    };
    if small.color().has_alpha() {
        encode(&small.into_rgba8().into(), ImageFormat::Png)
    } else {
        encode(&small.into_rgb8().into(), ImageFormat::Jpeg)
    }
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Encoded, MediaError> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .map_err(|e| MediaError::Internal(e.to_string()))?;
    Ok(Encoded {
        bytes,
        mime: mime_of(format),
    })
}

fn mime_of(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        ImageFormat::Gif => "image/gif",
        ImageFormat::WebP => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A type for display, guessed from the file name; never used to serve the file.
pub fn guess_type(name: &str) -> &'static str {
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_is_recognised_and_anything_else_is_not() {
        let image = DynamicImage::new_rgb8(1000, 500);
        let png = encode(&image, ImageFormat::Png).expect("encode");
        let (format, decoded) = decode(Cursor::new(png.bytes)).expect("decode");
        assert_eq!((format, decoded.width()), (ImageFormat::Png, 1000));
        let thumb = thumbnail(&decoded).expect("thumbnail");
        assert_eq!(thumb.mime, "image/jpeg");
        assert!(matches!(
            decode(Cursor::new(
                b"<svg><script>alert(1)</script></svg>".to_vec()
            )),
            Err(MediaError::NotAnImage)
        ));
    }
}
