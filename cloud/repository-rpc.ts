/**
 * Triton's model repository extension over gRPC: RepositoryIndex,
 * RepositoryModelLoad (load, or reload a loaded model) and
 * RepositoryModelUnload. They change what every tenant is served, so they
 * are admin operations: off unless `repository.control` is set; with auth on,
 * only tenants in `repository.adminTenants` may call them, and with auth off
 * the server accepts the setting on a loopback host only (checkRepositoryControl).
 */
import type * as grpc from '@grpc/grpc-js';
import type { GRPCInferenceService, ModelRepositoryParameter } from '../shared/gen/inference/grpc_service_pb.js';
import type { ServiceImplementation } from '../shared/grpc-service.js';
import { InferError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { isLoopback } from '../shared/tls.js';
import type { CallerOf, CloudAuth } from './auth.js';
import type { CloudConfig } from './config.js';
import type { ModelRepository } from './repository.js';

/** Refuses start-up with control on where nobody, or anybody, could call it. */
export function checkRepositoryControl(config: CloudConfig, auth: CloudAuth): void {
  if (!config.repository.control) return;
  if (auth.enabled && config.repository.adminTenants.length === 0) {
    throw new Error('repository.control is on with auth on, but repository.adminTenants is empty, so no caller may use it — name the admin tenants');
  }
  if (!auth.enabled && !isLoopback(config.host)) {
    throw new Error(`repository.control is on with auth off on ${config.host}, which would let anyone who reaches the port load and unload models — turn auth on and set repository.adminTenants, or serve on loopback`);
  }
}

export function repositoryHandlers(deps: {
  repository: ModelRepository;
  auth: CloudAuth;
  config: CloudConfig;
  log: Logger;
  toServiceError: (err: unknown) => Partial<grpc.StatusObject>;
}): Pick<ServiceImplementation<typeof GRPCInferenceService>, 'repositoryIndex' | 'repositoryModelLoad' | 'repositoryModelUnload'> {
  const { repository, auth, config, log, toServiceError } = deps;

  function admit(call: CallerOf, repositoryName: string): string {
    if (!config.repository.control) {
      throw new InferError('FAILED_PRECONDITION', 'model repository control is off on this server — set repository.control: true in the cloud config (admin tenants in repository.adminTenants)');
    }
    const identity = auth.identifyCall(call);
    if (auth.enabled && (identity.tenant === undefined || !config.repository.adminTenants.includes(identity.tenant))) {
      throw new InferError('PERMISSION_DENIED', `repository operations are for admin tenants (repository.adminTenants); ${identity.tenant === undefined ? 'this call has no tenant' : `tenant ${identity.tenant} is not one`}`);
    }
    if (repositoryName !== '') {
      throw new InferError('NOT_FOUND', `unknown repository '${repositoryName}': this server has one (its model catalog); leave repository_name empty`);
    }
    return identity.via;
  }

  /** Triton's `config` and `file:` overrides would bypass the catalog's sha256 checks; a model loads as the catalog says. */
  function checkParameters(parameters: Record<string, ModelRepositoryParameter>, accepted: readonly string[]): void {
    for (const name of Object.keys(parameters)) {
      if (!accepted.includes(name)) {
        throw new InferError('INVALID_ARGUMENT', `repository parameter '${name}' is not supported: models load as the catalog describes them — edit the catalog, then call RepositoryModelLoad`);
      }
    }
  }

  const answer = <T>(work: () => Promise<T>, respond: (err: Partial<grpc.StatusObject> | null, value?: T) => void) => {
    work().then(
      (value) => respond(null, value),
      (err) => respond(toServiceError(err)),
    );
  };

  return {
    repositoryIndex: (call, respond) =>
      answer(async () => {
        admit(call, call.request.repositoryName);
        return { models: repository.index(call.request.ready) };
      }, respond),
    repositoryModelLoad: (call, respond) =>
      answer(async () => {
        const via = admit(call, call.request.repositoryName);
        checkParameters(call.request.parameters, []);
        log.info({ model: call.request.modelName, caller: via }, 'RepositoryModelLoad');
        await repository.load(call.request.modelName);
        return {};
      }, respond),
    repositoryModelUnload: (call, respond) =>
      answer(async () => {
        const via = admit(call, call.request.repositoryName);
        // A model's graphs always unload with it, which is what unload_dependents asks for.
        checkParameters(call.request.parameters, ['unload_dependents']);
        log.info({ model: call.request.modelName, caller: via }, 'RepositoryModelUnload');
        await repository.unload(call.request.modelName);
        return {};
      }, respond),
  };
}
