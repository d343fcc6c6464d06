import type { Headers, WireRecord } from '@bus/core';
import { HeaderStrings } from '@bus/core/kit';
import type { MessageToProduce } from '@platformatic/kafka';

/**
 * A bus record as a record to produce: key → key, value → value, each header → a UTF-8 header. The
 * same bytes as `@bus/kafka` (kafkajs) writes, so either driver reads what the other wrote.
 */
export function toKafkaMessage(topic: string, record: WireRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  const value = typeof record.value === 'string' ? Buffer.from(record.value) : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  const headers = new Map<Buffer, Buffer>();
  for (const name in record.headers) headers.set(Buffer.from(name), Buffer.from(record.headers[name] as string));
  const message: MessageToProduce<Buffer, Buffer, Buffer, Buffer> = { topic, value, headers };
  if (record.key !== undefined) message.key = Buffer.from(record.key);
  return message;
}

/** Bytes of a record on the wire, near enough to split large publishes into bounded requests. */
export function recordSize(record: WireRecord): number {
  let size = 70 + (typeof record.value === 'string' ? Buffer.byteLength(record.value) : record.value.byteLength);
  if (record.key !== undefined) size += Buffer.byteLength(record.key);
  for (const name in record.headers) size += 10 + name.length + Buffer.byteLength(record.headers[name] as string);
  return size;
}

/** Kafka headers as strings (UTF-8). A header repeated in one record keeps its last value. */
export function fromKafkaHeaders(entries: Iterable<[Buffer | undefined, Buffer | undefined]>): Headers {
  const out: Headers = {};
  let position = 0;
  for (const [name, value] of entries) {
    if (name === undefined || value === undefined) continue;
    const key = headerStrings.name(position++, name);
    out[key] = headerStrings.value(key, value);
  }
  return out;
}

/** Repeated header names and values (ce_type, content-type, …) decoded once per change, not once per record. */
const headerStrings = new HeaderStrings();

/** A fetched record as a {@link WireRecord}. A null value (tombstone) becomes empty bytes. */
export function fromKafkaRecord(key: Buffer | undefined | null, value: Buffer | undefined | null, headers: Iterable<[Buffer | undefined, Buffer | undefined]>): WireRecord {
  const record: WireRecord = { value: value ?? Buffer.alloc(0), headers: fromKafkaHeaders(headers) };
  if (key !== null && key !== undefined) record.key = key.toString('utf8');
  return record;
}
