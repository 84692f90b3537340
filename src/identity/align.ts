/**
 * Face alignment: the least-squares similarity transform (image/warp.ts) from detected keypoints to an
 * embedder's canonical points; the crop is sampled by image/warp.ts too.
 */
export { applyAffine, invertAffine, similarityTransform, warpAffine, type Affine, type FloatImage } from '../image/index.ts';

/** insightface's ArcFace 5-point template for a 112×112 crop: eyes, nose tip, mouth corners (image left first). */
export const ARCFACE_TEMPLATE_112: [number, number][] = [
  [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
];


