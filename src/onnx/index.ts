/**
 * ONNX: everything that reads, builds, converts or runs ONNX models, and nothing about what the models
 * are for (the teacher's diffusers folders and the identity stage's face models use these).
 *   header.ts       a model's inputs, outputs and external weight files, read without loading its weights
 *   builder.ts      ONNX graphs built in code (OnnxBuilder)
 *   tfjs/           TF.js graph and layers models converted to ONNX, and the cache of converted models
 *   session.ts      onnxruntime sessions and the `runtime` config section
 *   model.ts        OnnxModel: a model run with float32 tensors
 *   image-model.ts  ImageModel: a model with one NCHW/NHWC image input
 *   dtypes.ts       float32 <-> float16 / int32 / int64 at the model boundary
 */
export { readOnnxHeader, type OnnxHeader, type OnnxIo } from './header.ts';
export { OnnxBuilder, float, floats, ints, int64, tensorAttr, type AttrValue, type BuilderOptions, type DType, type Dim, type TensorData } from './builder.ts';
export { convertTfjsGraph, CONVERTER_VERSION, SUPPORTED_OPS, type ConvertOptions } from './tfjs/convert.ts';
export { openSession, sessionOptions, DEFAULT_RUNTIME, type RuntimeConfig } from './session.ts';
export { OnnxModel, type Tensor, type IoInfo } from './model.ts';
export { ImageModel } from './image-model.ts';
export { FLOAT_TYPES, INT_TYPES, toHalf, fromHalf, toOrtTensor, fromOrtTensor } from './dtypes.ts';
