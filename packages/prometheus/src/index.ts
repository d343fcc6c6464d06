export { type ClusterMetricsServerOptions, clusterMetricsServer, exposeToClusterPrimary } from './cluster.js';
export {
  type BusPromMetrics,
  DEFAULT_COST_BUCKETS,
  DEFAULT_DELAY_BUCKETS,
  DEFAULT_LATENESS_BUCKETS,
  type PrometheusMetrics,
  type PrometheusOptions,
  prometheus,
} from './metrics.js';
export { type ExpositionSource, type MetricsRequestHandler, type MetricsServer, type MetricsServerOptions, metricsHandler, startMetricsServer } from './server.js';
export { exposeToSupervisor, SUPERVISOR_METRICS_TOPIC, type SupervisorMetricsServerOptions, supervisorMetricsServer } from './supervisor.js';
