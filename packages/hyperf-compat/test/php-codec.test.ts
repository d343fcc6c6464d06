import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type BusError, createBus, DecodeError, type Envelope, memoryTransport, PublishError, type WireRecord } from '@bus/core';
import { hyperfMessagebusCodec, PhpFloat, phpFloatString, phpSerialize, PhpUnserializeError, phpUnserialize } from '../src/index.js';

/*
 * Checked against real PHP (php-cli ≥ 8). These tests fail, not skip, when `php` is missing: the
 * codec's whole point is byte compatibility with what PHP writes and reads.
 *
 * SEED is the PHP bus's message code (mustafa3264/messagebus, src/Messages/…), trimmed of comments,
 * plus its producers' and consumers' wire steps, so "what PHP writes" is what the seed's code writes.
 */
const SEED = `
putenv('APP_NAME=consumer-app'); // the seed's typed $app property refuses null: a Hyperf app always sets it
function env($k) { $v = getenv($k); return $v === false ? null : $v; }
class MessageStructHeaderStruct {
    private string $event;
    private string $messageId;
    public function getEvent(): string { return $this->event; }
    public function setEvent(string $event): void { $this->event = $event; }
    public function getMessageId(): string { return $this->messageId; }
    public function setMessageId(string $messageId): void { $this->messageId = $messageId; }
    public function toArray(): array { return ['event' => $this->getEvent(), 'message_id' => $this->getMessageId()]; }
    public function loadArray($array): self { $this->event = $array['event']; $this->messageId = $array['message_id']; return $this; }
}
class MessageStructPayloadStruct {
    private string $app;
    private string $host;
    private float $happenedAt;
    private array $datas;
    public function __construct() { $this->app = env('APP_NAME'); $this->host = php_uname('n'); $this->happenedAt = microtime(true); }
    public function getApp(): string { return $this->app; }
    public function setApp(string $app): void { $this->app = $app; }
    public function getHost(): string { return $this->host; }
    public function setHost(string $host): void { $this->host = $host; }
    public function getHappenedAt(): float { return $this->happenedAt; }
    public function setHappenedAt(float $happenedAt): void { $this->happenedAt = $happenedAt; }
    public function getDatas(): array { return $this->datas; }
    public function setDatas(array $datas): void { $this->datas = $datas; }
    public function loadArray($array): self {
        $this->app = $array['_app']; $this->host = $array['_host']; $this->happenedAt = $array['_happened_at'];
        unset($array['_app'], $array['_host'], $array['_happened_at']);
        $this->datas = $array; return $this;
    }
    public function toArray(): array {
        return array_merge(['_app' => $this->getApp(), '_host' => $this->getHost(), '_happened_at' => $this->getHappenedAt()], $this->getDatas());
    }
}
class MessageStruct {
    public MessageStructHeaderStruct $headers;
    public MessageStructPayloadStruct $payload;
    public function loadArray($array): self {
        $this->headers = (new MessageStructHeaderStruct())->loadArray($array['headers']);
        $this->payload = (new MessageStructPayloadStruct())->loadArray($array['payload']);
        return $this;
    }
    public function toArray(): array { return ['headers' => $this->headers->toArray(), 'payload' => $this->payload->toArray()]; }
}
class MessageBuilderImpl {
    public function builder(string $event, array $data, string $key = ''): MessageStruct {
        $h = new MessageStructHeaderStruct(); $h->setEvent($event);
        if (!$key) { $key = md5(microtime(true) . '-msg'); }
        $h->setMessageId($key);
        $p = new MessageStructPayloadStruct(); $p->setDatas($data);
        $m = new MessageStruct(); $m->headers = $h; $m->payload = $p; return $m;
    }
}
// A producer's message, with the process-dependent fields pinned for the test.
function message(string $event, array $data, string $app, string $host, float $at, string $id = ''): MessageStruct {
    putenv('APP_NAME=' . $app);
    $m = (new MessageBuilderImpl())->builder($event, $data, $id);
    $m->payload->setHost($host); $m->payload->setHappenedAt($at);
    return $m;
}
// KafkaTopicsConnection::produce: new ProduceMessage($topic, $value, $key, $headers)
function kafkaRecord(MessageStruct $m): array {
    return ['value' => base64_encode(serialize($m->toArray())), 'key' => $m->headers->getMessageId(), 'headers' => $m->headers->toArray()];
}
// RedisProducerImplement::produce: $pipe->xAdd($topic, '*', array_merge(headers, payload)); phpredis
// sends each value as (string)$value, and "Array" for an array (checked against php-redis 5.3).
function redisFields(MessageStruct $m): array {
    return array_map(fn ($v) => is_array($v) ? 'Array' : (string) $v, array_merge($m->headers->toArray(), $m->payload->toArray()));
}
// KafkaConsumerConnection::consume: event from the first record header, message from unserialize().
function kafkaConsume(string $value): MessageStruct { return (new MessageStruct())->loadArray(unserialize($value)); }
// RedisConsumerImplements::consume: the entry's fields, minus event and message_id, become the data.
function redisConsume(array $item, string $streamId): MessageStruct {
    $event = $item['event']; unset($item['event'], $item['message_id']);
    return (new MessageBuilderImpl())->builder($event, $item, $streamId);
}
`;

function php(code: string): string {
  try {
    return execFileSync('php', ['-d', 'display_errors=stderr', '-r', `declare(strict_types=1);\n${SEED}\n${code}`], { encoding: 'utf8', timeout: 20_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('php is not installed: these tests need php-cli (apt-get install php-cli)');
    throw new Error(`php failed: ${e.stderr || e.message}`);
  }
}

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64');
/** A PHP string literal holding exactly these bytes. */
const phpBytes = (bytes: Uint8Array | string) => `base64_decode('${b64(bytes)}')`;

const AT = 1_764_000_000_123; // publishedAt, ms → _happened_at 1764000000.123
const codecOptions = { app: 'live-node', host: 'node-1' };

describe('php-cli', () => {
  it('is installed (the compatibility tests below run against it)', () => {
    expect(php('echo PHP_MAJOR_VERSION;')).toMatch(/^[89]$/);
  });
});

describe('phpSerialize', () => {
  it("writes PHP's serialize() bytes exactly", () => {
    const cases: [unknown, string][] = [
      [null, 'null'],
      [true, 'true'],
      [false, 'false'],
      [0, '0'],
      [-42, '-42'],
      [9_223_372_036_854_775_807n, 'PHP_INT_MAX'],
      [-9_223_372_036_854_775_808n, 'PHP_INT_MIN'],
      [2 ** 53, '9007199254740992.0'],
      [1.5, '1.5'],
      [0.1 + 0.2, '0.1 + 0.2'],
      [-0, '-0.0'],
      [new PhpFloat(2), '2.0'],
      [1e15, '1000000000000000'],
      [new PhpFloat(1e15), '1e15'],
      [1e17, '1e17'],
      [1e-5, '1e-5'],
      [0.0001, '0.0001'],
      [5e-324, '5e-324'],
      [Number.MAX_VALUE, 'PHP_FLOAT_MAX'],
      [Number.POSITIVE_INFINITY, 'INF'],
      [Number.NEGATIVE_INFINITY, '-INF'],
      [Number.NaN, 'NAN'],
      ['', "''"],
      ['主播 🎉 é', "'主播 🎉 é'"],
      ['quote " semi ; brace }', `'quote " semi ; brace }'`],
      [new Uint8Array([0, 255, 10]), '"\\x00\\xff\\n"'],
      [[], '[]'],
      [[1, 'a', null, [true]], "[1, 'a', null, [true]]"],
      // JS objects put integer-like keys first; PHP turns canonical integer strings into int keys.
      [{ a: 1, 5: 2, '05': 3, '-1': 4, '-0': 5, '': 6 }, "[5 => 2, 'a' => 1, '05' => 3, -1 => 4, '-0' => 5, '' => 6]"],
      [new Map<string | number, unknown>([['b', 1], [3, 'c'], ['7', 'd']]), "['b' => 1, 3 => 'c', 7 => 'd']"],
      [{ x: { y: [{ z: 0.5 }] }, skipped: undefined, date: new Date(0) }, "['x' => ['y' => [['z' => 0.5]]], 'date' => '1970-01-01T00:00:00.000Z']"],
    ];
    const expected = php(cases.map(([, expr]) => `echo base64_encode(serialize(${expr})), "\\n";`).join('\n')).trim().split('\n');
    cases.forEach(([value, expr], i) => {
      expect(phpSerialize(value).toString('latin1'), expr).toBe(Buffer.from(expected[i] as string, 'base64').toString('latin1'));
    });
  });

  it('formats random floats as PHP does', () => {
    const values: number[] = [];
    for (let i = 0; i < 400; i++) {
      const magnitude = 10 ** Math.floor(Math.random() * 60 - 30);
      values.push((Math.random() - 0.5) * magnitude, Math.round(Math.random() * 1e6) / 1e3, 1.7e9 + Math.random() * 1e8);
    }
    // PHP parses the shortest repr correctly rounded, so it gets the very same double.
    const expected = php(`foreach (explode(',', '${values.map(String).join(',')}') as $v) { echo serialize((float) $v), "\\n"; }`).trim().split('\n');
    values.forEach((v, i) => {
      expect(`d:${phpFloatString(v)};`, String(v)).toBe(expected[i]);
    });
  });

  it('refuses what PHP cannot carry', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (const value of [() => 1, Symbol('s'), new Set([1]), new (class Point {})(), cycle, 2n ** 63n, { m: new Map([[{}, 1]]) }]) {
      expect(() => phpSerialize(value)).toThrow(TypeError);
    }
  });
});

describe('phpUnserialize', () => {
  it("reads PHP's serialize() output", () => {
    const bytes = Buffer.from(
      php(String.raw`echo base64_encode(serialize([
        'null' => null, 'yes' => true, 'no' => false, 'int' => -7, 'max' => PHP_INT_MAX, 'float' => 0.1 + 0.2, 'whole' => 3.0,
        'inf' => -INF, 'str' => '主播 "quoted";', 'bin' => "\xff\x00", 'list' => [1, [2, 3]], 'map' => [5 => 'five', 'k' => []],
        'sparse' => [1 => 'a', 0 => 'b'], 'empty' => '',
      ]));`),
      'base64',
    );
    expect(phpUnserialize(bytes)).toEqual({
      null: null,
      yes: true,
      no: false,
      int: -7,
      max: 9_223_372_036_854_775_807n,
      float: 0.30000000000000004,
      whole: 3,
      inf: Number.NEGATIVE_INFINITY,
      str: '主播 "quoted";',
      bin: new Uint8Array([0xff, 0x00]),
      list: [1, [2, 3]],
      map: { 5: 'five', k: [] },
      sparse: { 1: 'a', 0: 'b' },
      empty: '',
    });
    // The same as a (UTF-8) string.
    expect(phpUnserialize('a:1:{s:6:"主播";d:1.0E+25;}')).toEqual({ 主播: 1e25 });
  });

  it('rejects malformed input with a DecodeError naming the byte offset', () => {
    // [input, our offset, our message, what PHP's own unserialize() says]: PHP rejects the same
    // inputs (mostly at the same offset) except where it is lenient and we are strict on purpose.
    const cases: [string, number, RegExp, string][] = [
      ['', 0, /unexpected end of data/, 'read false'],
      ['x:1;', 0, /unknown type "x"/, 'error at offset 0'],
      ['i:12', 2, /expected ';'/, 'error at offset 0'],
      ['i:1x;', 0, /malformed int "1x"/, 'error at offset 0'],
      ['i:9223372036854775808;', 0, /outside PHP's int range/, 'numerical result out of range'],
      ['d:1.2.3;', 0, /malformed float/, 'error at offset 0'],
      ['b:2;', 0, /boolean must be 0 or 1/, 'error at offset 0'],
      ['s:9:"abc";', 0, /runs past the end/, 'error at offset 2'],
      ['s:5:"abc";', 10, /unexpected end of data, expected '"'/, 'error at offset 10'],
      ['s:2:"abc";', 7, /expected '"', got 'c'/, 'error at offset 7'],
      ['s:-1:"";', 2, /malformed length/, 'error at offset 0'],
      ['a:2:{i:0;N;}', 0, /claims 2 elements/, 'error at offset 11'],
      ['a:1:{i:0;N;', 11, /unexpected end of data, expected '}'/, 'error at offset 11'],
      ['a:1:{N;N;}', 5, /array key must be an int or a string/, 'error at offset 7'],
      ['a:1:{i:0;r:1;}', 9, /references \("r:"\) are not supported/, 'error at offset 13'],
      ['O:8:"stdClass":0:{}', 0, /objects \("O:"\) are not supported/, 'read'],
      ['a:1:{i:0;N;}x', 12, /unexpected data after the value/, 'read'],
      ['N;;', 2, /unexpected data after the value/, 'read'],
    ];
    for (const [input, offset, message] of cases) {
      let thrown: unknown;
      try {
        phpUnserialize(input);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, input).toBeInstanceOf(PhpUnserializeError);
      expect(thrown, input).toBeInstanceOf(DecodeError);
      expect((thrown as PhpUnserializeError).offset, input).toBe(offset);
      expect((thrown as Error).message, input).toMatch(message);
      expect((thrown as Error).message, input).toContain(`at byte offset ${offset}`);
    }
    const verdicts = php(`
      foreach ([${cases.map(([input]) => phpBytes(input)).join(', ')}] as $s) {
        error_clear_last(); $v = @unserialize($s); $e = error_get_last();
        if (!$e) { echo $v === false ? 'read false' : 'read'; }
        elseif (preg_match('/Error at offset (\\d+)/', $e['message'], $m)) { echo 'error at offset ', $m[1]; }
        else { echo strtolower(preg_replace('/^unserialize\\(\\): /', '', $e['message'])); }
        echo "\\n";
      }`);
    expect(verdicts.trim().split('\n')).toEqual(cases.map(([, , , php]) => php));
  });

  it('refuses deep nesting (before the stack overflows) and __proto__ keys stay data', () => {
    expect(() => phpUnserialize(`${'a:1:{i:0;'.repeat(5000)}N;${'}'.repeat(5000)}`)).toThrow(/nested deeper than 512/);
    const value = phpUnserialize('a:1:{s:9:"__proto__";a:1:{s:5:"admin";b:1;}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('hyperfMessagebusCodec, Kafka wire', () => {
  const codec = hyperfMessagebusCodec({ wire: 'kafka', ...codecOptions });

  it('decodes the bytes the PHP producer writes', () => {
    const out = JSON.parse(
      php(`echo json_encode(kafkaRecord(message('anchor.income', ['anchorId' => 'a1', 'amount' => 30, 'ratio' => 0.25, 'tags' => ['vip', 'new'], 'meta' => ['room' => 7, 'name' => '主播'], 'gift' => null, 'live' => true], 'live-php', 'php-host-1', 1764000000.123456)));`),
    ) as { value: string; key: string; headers: Record<string, string> };
    const record: WireRecord = { key: out.key, value: Buffer.from(out.value, 'base64'), headers: out.headers };
    expect(Object.keys(record.headers)).toEqual(['event', 'message_id']);
    expect(record.key).toMatch(/^[0-9a-f]{32}$/); // md5(microtime(true) . '-msg')
    expect(codec.peekEvent(record)).toBe('anchor.income');
    expect(codec.decode(record)).toEqual({
      id: out.key,
      event: 'anchor.income',
      payload: { anchorId: 'a1', amount: 30, ratio: 0.25, tags: ['vip', 'new'], meta: { room: 7, name: '主播' }, gift: null, live: true },
      publishedAt: 1_764_000_000_123.456,
      headers: { _host: 'php-host-1' },
      source: 'live-php',
    });
  });

  it('writes what the PHP consumer reads back identically, byte for byte as PHP would serialize it', () => {
    const envelope: Envelope = {
      id: '0190b3c2-7d1e-7000-8000-000000000001',
      event: 'anchor.income',
      payload: { anchorId: 'a1', amount: 30, ratio: 0.1 + 0.2, name: '主播 🎉', tags: ['vip'], meta: { room: 7 }, gift: null },
      publishedAt: AT,
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      source: 'live-app',
    };
    const record = codec.encode(envelope);
    expect(record.key).toBe(envelope.id);
    // The PHP consumer takes the first header as the event.
    expect(Object.entries(record.headers)).toEqual([
      ['event', 'anchor.income'],
      ['message_id', envelope.id],
      ['traceparent', envelope.headers.traceparent],
    ]);
    const want = `['headers' => ['event' => 'anchor.income', 'message_id' => '${envelope.id}'], 'payload' => ['_app' => 'live-app', '_host' => 'node-1', '_happened_at' => 1764000000.123,
      'anchorId' => 'a1', 'amount' => 30, 'ratio' => 0.1 + 0.2, 'name' => '主播 🎉', 'tags' => ['vip'], 'meta' => ['room' => 7], 'gift' => null]]`;
    const out = php(`
      $bytes = ${phpBytes(record.value as Uint8Array)};
      $want = ${want};
      echo serialize($want) === $bytes ? 'same bytes' : 'different bytes', "\\n";
      $m = kafkaConsume($bytes);
      echo $m->headers->getEvent(), "\\n", $m->headers->getMessageId(), "\\n", $m->payload->getApp(), "\\n", var_export($m->payload->getHappenedAt(), true), "\\n";
      $payload = $m->payload->toArray(); // what handleMessage() gets
      echo $payload === $want['payload'] ? 'same payload' : var_export($payload, true), "\\n";
    `);
    expect(out.trim().split('\n')).toEqual(['same bytes', 'anchor.income', envelope.id, 'live-app', '1764000000.123', 'same payload']);
    expect(codec.decode(record)).toEqual({ ...envelope, payload: { ...(envelope.payload as object) }, headers: { ...envelope.headers, _host: 'node-1' } });
  });

  it('uses the envelope key when there is one, the app option when there is no source', () => {
    const record = codec.encode({ id: 'm1', event: 'e', payload: {}, publishedAt: AT, headers: {}, key: 'anchor-a1' });
    expect(record.key).toBe('anchor-a1');
    const decoded = codec.decode(record);
    expect(decoded.key).toBe('anchor-a1');
    expect(decoded.source).toBe('live-node');
    expect(decoded.payload).toEqual({});
  });

  it('refuses payloads PHP would misread, with a non-retryable PublishError', () => {
    const base = { id: 'm1', event: 'e', publishedAt: AT, headers: {} };
    const cases: [Partial<Envelope>, RegExp][] = [
      [{ payload: [1, 2] }, /payload must be a plain object .* got an array/],
      [{ payload: 'text' }, /payload must be a plain object .* got string/],
      [{ payload: { _app: 'x' } }, /payload field "_app" is reserved/],
      [{ payload: { _happened_at: 1 } }, /payload field "_happened_at" is reserved/],
      [{ payload: { f: () => 1 } }, /\$\.payload\.f is a function/],
      [{ payload: {}, headers: { 1: 'x' } }, /header name "1" is not supported/],
      [{ payload: {}, publishedAt: Number.NaN }, /publishedAt must be a finite number/],
    ];
    for (const [override, message] of cases) {
      let thrown: unknown;
      try {
        codec.encode({ ...base, ...override } as Envelope);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, String(message)).toBeInstanceOf(PublishError);
      expect((thrown as BusError).retryable).toBe(false);
      expect((thrown as Error).message).toMatch(message);
    }
  });

  it('rejects what is not a PHP bus message with a DecodeError', () => {
    const good = codec.encode({ id: 'm1', event: 'e', payload: {}, publishedAt: AT, headers: {} });
    const serialized = (value: unknown) => ({ headers: good.headers, value: phpSerialize(value) });
    const cases: [WireRecord, RegExp][] = [
      [{ headers: good.headers, value: '' }, /no value/],
      [{ headers: good.headers, value: '{"json":true}' }, /php unserialize: unknown type "\{" at byte offset 0/],
      [{ headers: good.headers, value: Buffer.from(good.value as Uint8Array).subarray(0, 40) }, /at byte offset \d+/],
      [serialized('text'), /not a serialized array/],
      [serialized({ payload: {} }), /no "headers" array/],
      [serialized({ headers: { event: 'e', message_id: 'm' } }), /no "payload" array/],
      [serialized({ headers: { message_id: 'm' }, payload: {} }), /headers.event must be a non-empty string/],
      [serialized({ headers: { event: 'e', message_id: 5 }, payload: {} }), /headers.message_id must be a non-empty string/],
      [serialized({ headers: { event: 'e', message_id: 'm' }, payload: { _happened_at: 'soon' } }), /_happened_at must be a number .* got "soon"/],
    ];
    for (const [record, message] of cases) {
      expect(() => codec.decode(record)).toThrow(DecodeError);
      expect(() => codec.decode(record)).toThrow(message);
    }
  });
});

describe('hyperfMessagebusCodec, Redis wire', () => {
  const codec = hyperfMessagebusCodec({ wire: 'redis', ...codecOptions });

  it('decodes the fields the PHP producer writes with XADD', () => {
    const fields = JSON.parse(
      php(`echo json_encode(redisFields(message('anchor.income', ['anchorId' => 'a1', 'amount' => 30, 'ratio' => 0.1 + 0.2, 'vip' => true, 'off' => false, 'gift' => null, 'name' => '主播'], 'live-php', 'php-host-1', 1764000000.123456)));`),
    ) as Record<string, string>;
    expect(fields._happened_at).toBe('1764000000.1235'); // (string) of a float: 14 significant digits
    const record: WireRecord = { value: Buffer.alloc(0), headers: fields };
    expect(codec.peekEvent(record)).toBe('anchor.income');
    expect(codec.decode(record)).toEqual({
      id: fields.message_id,
      event: 'anchor.income',
      payload: { anchorId: 'a1', amount: '30', ratio: '0.3', vip: '1', off: '', gift: '', name: '主播' },
      publishedAt: 1_764_000_000_123.5,
      headers: { _host: 'php-host-1' },
      source: 'live-php',
    });
  });

  it('writes flat string fields that the PHP consumer reads as the producer would have written them', () => {
    const envelope: Envelope = {
      id: '0190b3c2-7d1e-7000-8000-000000000002',
      event: 'anchor.income',
      payload: { anchorId: 'a1', amount: 30, ratio: 0.25, vip: true, off: false, gift: null, big: 2n ** 60n, name: '主播 🎉', at: new Date(0), skipped: undefined },
      publishedAt: AT,
      headers: { traceparent: 'tp' },
      source: 'live-app',
    };
    const record = codec.encode(envelope);
    expect(record.key).toBeUndefined();
    expect(record.value).toBe('');
    expect(record.headers).toEqual({
      event: 'anchor.income',
      message_id: envelope.id,
      _app: 'live-app',
      _host: 'node-1',
      _happened_at: '1764000000.123',
      anchorId: 'a1',
      amount: '30',
      ratio: '0.25',
      vip: '1',
      off: '',
      gift: '',
      big: '1152921504606846976',
      name: '主播 🎉',
      at: '1970-01-01T00:00:00.000Z',
    });
    // The same entry from the PHP producer, then the PHP consumer's view of ours.
    const out = php(`
      $ours = json_decode(${phpBytes(JSON.stringify(record.headers))}, true);
      $theirs = redisFields(message('anchor.income', ['anchorId' => 'a1', 'amount' => 30, 'ratio' => 0.25, 'vip' => true, 'off' => false, 'gift' => null, 'big' => 2 ** 60, 'name' => '主播 🎉', 'at' => '1970-01-01T00:00:00.000Z'], 'live-app', 'node-1', 1764000000.123, '${envelope.id}'));
      echo $ours === $theirs ? 'same fields' : var_export([$ours, $theirs], true), "\\n";
      $m = redisConsume($ours, '1764000000123-0');
      echo $m->headers->getEvent(), "\\n", var_export($m->payload->toArray(), true);
    `);
    const [same, event, ...rest] = out.trim().split('\n');
    expect(same).toBe('same fields');
    expect(event).toBe('anchor.income');
    expect(rest.join('\n')).toContain("'_happened_at' => '1764000000.123',");
    expect(rest.join('\n')).toContain("'name' => '主播 🎉',");
    expect(codec.decode(record)).toEqual({
      id: envelope.id,
      event: 'anchor.income',
      payload: { anchorId: 'a1', amount: '30', ratio: '0.25', vip: '1', off: '', gift: '', big: '1152921504606846976', name: '主播 🎉', at: '1970-01-01T00:00:00.000Z' },
      publishedAt: AT,
      headers: { _host: 'node-1' },
      source: 'live-app',
    });
  });

  it('carries the listed headers as fields, and puts back payload fields the transport took as value or key', () => {
    const tracing = hyperfMessagebusCodec({ wire: 'redis', ...codecOptions, carryHeaders: ['traceparent'] });
    const record = tracing.encode({ id: 'm1', event: 'e', payload: { a: 'x' }, publishedAt: AT, headers: { traceparent: 'tp', other: 'dropped' } });
    expect(record.headers.traceparent).toBe('tp');
    expect(record.headers.other).toBeUndefined();
    expect(tracing.decode(record).headers).toEqual({ traceparent: 'tp', _host: 'node-1' });
    expect(codec.decode(record).payload).toEqual({ a: 'x', traceparent: 'tp' });
    expect(codec.decode({ ...record, value: 'raw', key: 'k' }).payload).toEqual({ a: 'x', traceparent: 'tp', _data: 'raw', _key: 'k' });
  });

  it('refuses nested payload values and fields the PHP envelope owns', () => {
    const base = { id: 'm1', event: 'e', publishedAt: AT, headers: {} };
    const cases: [unknown, RegExp][] = [
      [{ tags: ['a'] }, /payload field "tags" is an array; the PHP bus's Redis format is flat/],
      [{ meta: { room: 1 } }, /payload field "meta" is an object/],
      [{ bin: new Uint8Array(1) }, /payload field "bin" is an object/],
      [{ event: 'x' }, /payload field "event" is reserved/],
      [{ message_id: 'x' }, /payload field "message_id" is reserved/],
      [{ _host: 'x' }, /payload field "_host" is reserved/],
    ];
    for (const [payload, message] of cases) {
      expect(() => codec.encode({ ...base, payload })).toThrow(PublishError);
      expect(() => codec.encode({ ...base, payload })).toThrow(message);
    }
  });

  it('rejects entries that are not PHP bus messages with a DecodeError', () => {
    const ok = { event: 'e', message_id: 'm', _happened_at: '1764000000.5' };
    const cases: [Record<string, string>, RegExp][] = [
      [{ message_id: 'm', _happened_at: '1' }, /missing field "event"/],
      [{ event: 'e', _happened_at: '1' }, /missing field "message_id"/],
      [{ ...ok, _happened_at: '' }, /"_happened_at" must be Unix seconds, got ""/],
      [{ ...ok, _happened_at: 'INF' }, /"_happened_at" must be Unix seconds/],
      [{ event: 'e', message_id: 'm' }, /"_happened_at" must be Unix seconds, got nothing/],
      // Our JSON codec's entries are not PHP bus messages.
      [{ ce_id: 'x', ce_type: 'e', ce_time: '2025-01-01T00:00:00Z' }, /missing field "event"/],
    ];
    for (const [headers, message] of cases) {
      expect(() => codec.decode({ headers, value: '' })).toThrow(DecodeError);
      expect(() => codec.decode({ headers, value: '' })).toThrow(message);
    }
    expect(codec.decode({ headers: ok, value: '' }).publishedAt).toBe(1_764_000_000_500);
  });
});

describe('hyperfMessagebusCodec options', () => {
  it('are validated with errors naming the option', () => {
    expect(() => hyperfMessagebusCodec({} as never)).toThrow('[bus/hyperf-compat] hyperfMessagebusCodec.wire must be "kafka" or "redis", got undefined');
    expect(() => hyperfMessagebusCodec({ wire: 'amqp' as never })).toThrow(/hyperfMessagebusCodec.wire must be one of "kafka", "redis"/);
    expect(() => hyperfMessagebusCodec({ wire: 'redis', host: '' })).toThrow(/hyperfMessagebusCodec.host must be a non-empty string/);
    expect(() => hyperfMessagebusCodec({ wire: 'redis', carryHeaders: ['_app'] })).toThrow(/carryHeaders must not name the PHP envelope field "_app"/);
    expect(hyperfMessagebusCodec({ wire: 'kafka' }).name).toBe('hyperf-messagebus/kafka');
  });

  it('plugs into a bus: publish and handle through the memory transport', async () => {
    const bus = createBus({ transports: { memory: memoryTransport() }, codec: hyperfMessagebusCodec({ wire: 'kafka', host: 'h' }), source: 'live-app' });
    const handled: unknown[] = [];
    bus.module({
      name: 'tasks',
      pollIntervalMs: 10,
      consumers: { income: { topics: ['live'], events: ['anchor.income'] } },
      handler: ({ payload, message }) => {
        handled.push({ payload, source: message.source, host: message.headers._host });
      },
    });
    await bus.start();
    await bus.publish('live', 'anchor.income', { anchorId: 'a1', amount: 30 });
    for (let i = 0; i < 200 && handled.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await bus.close();
    expect(handled).toEqual([{ payload: { anchorId: 'a1', amount: 30 }, source: 'live-app', host: 'h' }]);
  });
});
