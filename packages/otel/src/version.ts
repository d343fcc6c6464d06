/** Version of this package, reported as the tracer's instrumentation scope version (a test keeps it equal to package.json's). */
export const VERSION = '0.0.0';
