/** The encoder's defaults, in a module without sharp so that the config schema can name them cheaply. */

/** JPEG / lossy WebP quality when none is given: the default of `output.quality` too. */
export const DEFAULT_QUALITY = 95;

/**
 * zlib level of every PNG (always with adaptive filtering, which alone saves 31% on the demo). Level 9
 * saved only 2.3% more on the demo's 128 px images and 4-6% on 1024 px photos, for 2.5x (128 px) to
 * 4-6x (1024 px: 1-2 s per image) the encode time, which would bound a worker with a fast teacher.
 */
export const PNG_COMPRESSION_LEVEL = 6;
