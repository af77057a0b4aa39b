/**
 * One metered request: metadata only, never the prompt or the completion. The gateway buffers these
 * and writes them in batches (table UsageRecord); `requestId` is unique, so a retried batch after a
 * database outage cannot duplicate a record.
 */
export interface UsageRecord {
  requestId: string;
  tenant: string;
  /** `{namespace}/{name}` of the Environment. */
  environment: string;
  keyPrefix: string;
  keyName: string;
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  latencyMs: number;
  status: number;
  streamed: boolean;
  createdAt: Date;
}
