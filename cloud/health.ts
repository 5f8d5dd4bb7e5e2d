import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type HealthCheckRequest,
  type HealthCheckResponse,
} from '../shared/gen/grpc/health/v1/health_pb.js';
import { addService } from '../shared/grpc-service.js';

export { ServingStatus };

/**
 * grpc.health.v1 for Kubernetes probes. The empty service name is the server
 * as a whole; every served model is also a service name, so a probe can wait
 * for one model.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{ service: string; call: grpc.ServerWritableStream<HealthCheckRequest, unknown> }>();

  set(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const w of this.watchers) if (w.service === service) w.call.write(this.response(service));
  }

  /** Flips every known service, e.g. to NOT_SERVING when draining. */
  setAll(status: ServingStatus): void {
    for (const service of this.statuses.keys()) this.set(service, status);
  }

  addTo(server: grpc.Server): void {
    addService(server, Health, {
      check: (call, callback) => {
        const service = call.request.service;
        if (!this.statuses.has(service)) {
          callback({ code: grpc.status.NOT_FOUND, details: `health: unknown service '${service}'` });
          return;
        }
        callback(null, this.response(service));
      },
      watch: (call) => {
        const watcher = { service: call.request.service, call };
        this.watchers.add(watcher);
        call.write(this.response(watcher.service));
        call.on('cancelled', () => this.watchers.delete(watcher));
        call.on('close', () => this.watchers.delete(watcher));
      },
    });
  }

  /** Ends open Watch streams so a graceful shutdown does not wait on them. */
  endWatches(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  private response(service: string): HealthCheckResponse {
    // Watch reports SERVICE_UNKNOWN for a name it does not know (and keeps watching), per the health protocol.
    return create(HealthCheckResponseSchema, { status: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN });
  }
}
