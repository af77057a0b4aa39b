/**
 * The fast path of revocation: a Redis pub/sub message every gateway replica applies at once (the
 * gateway-config Secret stays the source of truth). Without REDIS_URL this is a no-op.
 */
import { Redis } from "ioredis";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";

export type RevocationMessage = { type: "key_revoked"; hash: string; prefix: string } | { type: "tenant_suspended"; tenant: string };

export interface RevocationPublisher {
  publish(msg: RevocationMessage): Promise<void>;
  close(): Promise<void>;
}

export function createRevocationPublisher(redisUrl: string | undefined, onPublished?: (msg: RevocationMessage) => void): RevocationPublisher {
  if (!redisUrl) return { publish: async () => {}, close: async () => {} };
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 2000, enableOfflineQueue: true });
  redis.on("error", () => { /* reported through failed publishes */ });
  return {
    async publish(msg) {
      await redis.publish(REVOCATION_CHANNEL, JSON.stringify(msg));
      onPublished?.(msg);
    },
    async close() {
      redis.disconnect();
    },
  };
}
