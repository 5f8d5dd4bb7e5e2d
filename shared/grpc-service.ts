/**
 * The bridge between protobuf-es service descriptors (shared/gen) and grpc-js.
 * Every RPC of a generated DescService becomes a grpc-js method definition in
 * one loop: path `/<package>.<Service>/<Method>` (gRPC over HTTP/2 spec),
 * streaming flags from `methodKind`, payloads through toBinary/fromBinary. Keys
 * are the proto method names with the camelCase name as `originalName`, as
 * @grpc/proto-loader builds them, so handlers and clients may use either.
 */
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';

type Kind = DescMethod['methodKind'];
type MethodOf<K extends Kind, I extends DescMessage, O extends DescMessage> = DescMethod & {
  methodKind: K;
  input: I;
  output: O;
};

/** Handlers may answer with a full message or a plain init object; both are serialized the same way. */
type Handler<M> =
  M extends MethodOf<infer K, infer I, infer O>
    ? {
        unary: grpc.handleUnaryCall<MessageShape<I>, MessageInitShape<O>>;
        server_streaming: grpc.handleServerStreamingCall<MessageShape<I>, MessageInitShape<O>>;
        client_streaming: grpc.handleClientStreamingCall<MessageShape<I>, MessageInitShape<O>>;
        bidi_streaming: grpc.handleBidiStreamingCall<MessageShape<I>, MessageInitShape<O>>;
      }[K]
    : never;

/** One handler per RPC, keyed by the method's camelCase name (`modelInfer`). */
export type ServiceImplementation<S extends DescService> = { [K in keyof S['method']]: Handler<S['method'][K]> };

export interface CallOptions extends grpc.CallOptions {
  metadata?: grpc.Metadata;
}

const definitions = new WeakMap<DescService, grpc.ServiceDefinition>();

function serializer<D extends DescMessage>(schema: D): (value: MessageInitShape<D>) => Buffer {
  return (value) => {
    const bytes = toBinary(schema, create(schema, value));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(schema, bytes);
}


/** The grpc-js definition of every RPC of `service`, built once per service. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  let definition = definitions.get(service);
  if (definition) return definition;
  definition = Object.fromEntries(
    service.methods.map((method) => {
      const kind = method.methodKind;
      const methodDefinition: grpc.MethodDefinition<MessageInitShape<DescMessage>, MessageShape<DescMessage>> = {
        path: `/${service.typeName}/${method.name}`,
        requestStream: kind === 'client_streaming' || kind === 'bidi_streaming',
        responseStream: kind === 'server_streaming' || kind === 'bidi_streaming',
        requestSerialize: serializer(method.input),
        requestDeserialize: deserializer(method.input),
        responseSerialize: serializer(method.output),
        responseDeserialize: deserializer(method.output),
        originalName: method.localName,
      };
      return [method.name, methodDefinition];
    }),
  );
  definitions.set(service, definition);
  return definition;
}

function definitionOf<I extends DescMessage, O extends DescMessage>(
  method: MethodOf<Kind, I, O>,
): grpc.MethodDefinition<MessageInitShape<I>, MessageShape<O>> {
  return serviceDefinition(method.parent)[method.name]!;
}

/** RPCs left out of `implementation` answer UNIMPLEMENTED (grpc-js default), as the gRPC spec asks. */
export function addService<S extends DescService>(
  server: grpc.Server,
  service: S,
  implementation: Partial<ServiceImplementation<S>>,
): void {
  server.addService(serviceDefinition(service), implementation as grpc.UntypedServiceImplementation);
}

/** A grpc-js client class for `service`: `new (clientConstructor(svc))(address, credentials)`. */
export function clientConstructor(service: DescService): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(serviceDefinition(service), service.typeName);
}

/** Calls a unary RPC on any grpc-js client connected to a server of the method's service. */
export function callUnary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: MethodOf<'unary', I, O>,
  request: MessageInitShape<I>,
  { metadata = new grpc.Metadata(), ...options }: CallOptions = {},
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    const { path, requestSerialize, responseDeserialize } = definitionOf(method);
    client.makeUnaryRequest(path, requestSerialize, responseDeserialize, request, metadata, options, (err, response) =>
      err ? reject(err) : resolve(response!),
    );
  });
}

/** Opens a bidirectional stream (e.g. ModelStreamInfer); write init objects or messages, read messages. */
export function openBidiStream<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: MethodOf<'bidi_streaming', I, O>,
  { metadata = new grpc.Metadata(), ...options }: CallOptions = {},
): grpc.ClientDuplexStream<MessageInitShape<I>, MessageShape<O>> {
  const { path, requestSerialize, responseDeserialize } = definitionOf(method);
  return client.makeBidiStreamRequest(path, requestSerialize, responseDeserialize, metadata, options);
}
