/**
 * Images in and out, one policy for every stage: decoding (EXIF orientation applied, truncated and
 * unsupported files refused as UserErrors naming the file, JPEG/PNG/WebP/TIFF/GIF only), the cover-and-
 * centre-crop decode the teacher's sources use, the shard image encoder, the one reader of "a folder
 * of images or a Parquet column", and bilinear sampling through an affine map (face crops).
 */
export { decodeImage, decodeImageCover, IMAGE_EXTENSIONS, isImageFileName } from './decode.ts';
export { DEFAULT_QUALITY, PNG_COMPRESSION_LEVEL } from './constants.ts';
export { encodeImage, imageSettingsFor, type ImageEncoding, type ImageFormat, type ImageSettings } from './encode.ts';
export { ImageSources, type ImageSourceOptions, type SourceImage } from './sources.ts';
export { applyAffine, invertAffine, sampleAffine, similarityTransform, warpAffine, type Affine, type FloatImage } from './warp.ts';
