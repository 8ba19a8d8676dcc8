export { createMetrics, type Metrics } from './registry';
export { registerUsageMetrics, type UsageMetricsOptions, type UsageSource } from './usage-collector';
export { REFUSAL_REASONS, type RefusalReason } from './refusals';
