export {
  HYPERF_MESSAGEBUS_FIELD,
  type HyperfMessagebusCodecOptions,
  type HyperfMessagebusWire,
  hyperfMessagebusCodec,
} from './php-codec.js';
export { PhpFloat, phpFloatString, phpSerialize, PhpUnserializeError, phpUnserialize, type PhpValue } from './php-serialize.js';
