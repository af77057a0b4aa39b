/** Kubernetes Events (core/v1) on lifecycle changes: visible in `kubectl describe` and `kubectl get events`. */
import { randomBytes } from "node:crypto";
import type { Logger } from "winston";
import { resourcePath, type KubeClient } from "@crosslogic/kube/client";
import type { KubeObject } from "@crosslogic/kube/informer";
import { Types } from "./types.ts";

type Involved = KubeObject & { apiVersion?: string; kind?: string };

export interface EventRecorder {
  event(obj: Involved, type: "Normal" | "Warning", reason: string, message: string): void;
}

/** The core/v1 Event the operator writes about `obj` (pure but for its random name and the time). */
export function eventBody(obj: Involved, type: "Normal" | "Warning", reason: string, message: string, component: string) {
  // Events about cluster-scoped objects live in "default", as kubectl describe expects.
  const namespace = obj.metadata.namespace ?? "default";
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    apiVersion: "v1", kind: "Event",
    metadata: { name: `${obj.metadata.name}.${randomBytes(8).toString("hex")}`, namespace },
    involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
    reason, message: message.slice(0, 1024), type, source: { component }, reportingComponent: component, reportingInstance: component,
    firstTimestamp: now, lastTimestamp: now, count: 1,
  };
}

export function createEventRecorder(client: KubeClient, component: string, log: Logger, onWrite?: () => void): EventRecorder {
  return {
    event(obj, type, reason, message) {
      const body = eventBody(obj, type, reason, message, component);
      onWrite?.();
      // Fire-and-forget: an Event that cannot be written must not fail the reconcile.
      client.request({ method: "POST", path: resourcePath(Types.event, body.metadata.namespace), body })
        .catch((err: Error) => log.warn("Event not recorded", { reason, error: err.message }));
    },
  };
}
