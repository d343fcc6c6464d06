/** kafkajs's request queue class (no types are published for its internals; see kafkajs-timeout.ts). */
declare module 'kafkajs/src/network/requestQueue/index.js' {
  const RequestQueue: unknown;
  export default RequestQueue;
}
