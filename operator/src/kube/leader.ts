/**
 * Lease-based leader election (coordination.k8s.io/v1), as client-go does it: a candidate takes
 * the Lease when it is free or its holder has not renewed it for leaseDuration as observed on the
 * candidate's own clock (no cross-machine clock comparison); the leader renews every retryPeriod
 * and steps down when it cannot renew within renewDeadline. Updates use the Lease's
 * resourceVersion, so two candidates can never both win.
 */
import type { Logger } from "winston";
import { isConflict, isNotFound, resourcePath, type KubeClient } from "@crosslogic/kube/client";
import { Types } from "./types.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

const microTime = (d: Date) => d.toISOString().replace(/(\.\d{3})Z$/, "$1000Z");

export class LeaderElector {
  #client: KubeClient;
  #opts: Required<LeaderElectionOptions>;
  #log: Logger;
  #stopped = false;
  #leading = false;
  #observed: { holder?: string; renewTime?: string; at: number } = { at: 0 };
  #wake: (() => void) | undefined;

  constructor(client: KubeClient, opts: LeaderElectionOptions, log: Logger) {
    this.#client = client;
    this.#opts = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    this.#log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get leading(): boolean {
    return this.#leading;
  }

  #path(name?: string) {
    return resourcePath(Types.lease, this.#opts.namespace, name);
  }

  /** One attempt to acquire or renew; true when this replica holds the Lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.ceil(this.#opts.leaseDurationMs / 1000);
    let lease: Lease;
    try {
      lease = await this.#client.request<Lease>({ method: "GET", path: this.#path(this.#opts.name) });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.#client.request({
          method: "POST", path: this.#path(), body: {
            apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.#opts.name, namespace: this.#opts.namespace },
            spec: { holderIdentity: this.#opts.identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec;
    if (spec.holderIdentity !== this.#observed.holder || spec.renewTime !== this.#observed.renewTime) {
      this.#observed = { holder: spec.holderIdentity, renewTime: spec.renewTime, at: Date.now() };
    }
    const held = spec.holderIdentity === this.#opts.identity;
    const free = !spec.holderIdentity;
    const expired = Date.now() - this.#observed.at > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (!held && !free && !expired) return false;
    const next: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.#opts.identity, leaseDurationSeconds: durationSeconds, renewTime: microTime(now),
        acquireTime: held ? spec.acquireTime : microTime(now),
        leaseTransitions: held ? spec.leaseTransitions ?? 0 : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await this.#client.request<Lease>({ method: "PUT", path: this.#path(this.#opts.name), body: next });
      this.#observed = { holder: updated.spec.holderIdentity, renewTime: updated.spec.renewTime, at: Date.now() };
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /**
   * Campaigns until leading, calls onStarted, then renews until stopped (resolves) or until the
   * Lease is lost (calls onStopped). Returns when the elector stops.
   */
  async run(callbacks: { onStarted: () => void; onStopped: () => void }): Promise<void> {
    while (!this.#stopped && !this.#leading) {
      try {
        if (await this.tryAcquireOrRenew()) {
          this.#leading = true;
          break;
        }
      } catch (err) {
        this.#log.warn("Leader election attempt failed", { error: (err as Error).message });
      }
      await this.#sleep(this.#opts.retryPeriodMs);
    }
    if (this.#stopped) return;
    this.#log.info("Became leader");
    callbacks.onStarted();
    let lastRenew = Date.now();
    while (!this.#stopped) {
      await this.#sleep(this.#opts.retryPeriodMs);
      if (this.#stopped) break;
      try {
        if (await this.tryAcquireOrRenew()) { lastRenew = Date.now(); continue; }
        this.#log.error("Leader Lease taken by another replica");
      } catch (err) {
        if (Date.now() - lastRenew < this.#opts.renewDeadlineMs) {
          this.#log.warn("Leader Lease renewal failed, retrying", { error: (err as Error).message });
          continue;
        }
        this.#log.error("Leader Lease not renewed within the renew deadline", { error: (err as Error).message });
      }
      this.#leading = false;
      callbacks.onStopped();
      return;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.#wake = undefined; resolve(); }, ms);
      this.#wake = () => { clearTimeout(t); resolve(); };
    });
  }

  /** Stops campaigning or renewing; a leader releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#client.request<Lease>({ method: "GET", path: this.#path(this.#opts.name) });
      if (lease.spec.holderIdentity !== this.#opts.identity) return;
      await this.#client.request({
        method: "PUT", path: this.#path(this.#opts.name),
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(new Date()) } },
      });
      this.#log.info("Released leader Lease");
    } catch (err) {
      this.#log.warn("Could not release leader Lease", { error: (err as Error).message });
    }
  }
}
