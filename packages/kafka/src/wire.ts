import type { Headers, WireRecord } from '@bus/core';
import { HeaderStrings } from '@bus/core/kit';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';

/** A bus record as a Kafka message: key → key, value → value (bytes), each header → a string header. */
export function toKafkaMessage(record: WireRecord): Message {
  const value = typeof record.value === 'string' ? record.value : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  const message: Message = { value, headers: { ...record.headers } };
  if (record.key !== undefined) message.key = record.key;
  return message;
}

/** Bytes of a record on the wire, near enough to split large publishes into bounded requests. */
export function recordSize(record: WireRecord): number {
  let size = 70 + (typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.byteLength);
  if (record.key !== undefined) size += Buffer.byteLength(record.key);
  for (const name in record.headers) size += 10 + name.length + Buffer.byteLength(record.headers[name] as string);
  return size;
}

/** Repeated header values (ce_type, content-type, …) decoded once per change, not once per record. */
const headerStrings = new HeaderStrings();

/** Kafka headers as strings (UTF-8). A header repeated in one record keeps its last value. */
export function fromKafkaHeaders(headers: IHeaders | undefined): Headers {
  const out: Headers = {};
  if (!headers) return out;
  for (const name in headers) {
    let value = headers[name];
    if (Array.isArray(value)) value = value[value.length - 1];
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? value : headerStrings.value(name, value);
  }
  return out;
}

/** The parts of a fetched Kafka message that make a {@link WireRecord}. A null value (tombstone) becomes empty bytes. */
export function fromKafkaMessage(message: KafkaMessage): WireRecord {
  const record: WireRecord = { value: message.value ?? Buffer.alloc(0), headers: fromKafkaHeaders(message.headers) };
  if (message.key !== null && message.key !== undefined) record.key = message.key.toString('utf8');
  return record;
}
