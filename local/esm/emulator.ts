// Runs every event source mapping of the service; the Lambda API endpoint and `dev` drive it.
import '../../shared/kafka/node20-polyfills';
import { Producer, stringSerializer } from '@platformatic/kafka';
import type { EsmDefinition } from './config';
import { type DestinationDeps, destinationWriter } from './destinations';
import { type EsmHandler, type InvocationResult, invokeHandler, resolveHandler } from './invoker';
import { EventSourceMapping } from './mapping';

export interface EmulatorOptions {
  definitions: EsmDefinition[];
  brokers: string[];
  /** Handlers injected by tests, by ESM uuid or function key; the rest are imported from serverless.yml. */
  handlers?: Record<string, EsmHandler>;
  loadHandler?: (definition: EsmDefinition) => Promise<EsmHandler>;
  destinations?: DestinationDeps;
  retryDelayMs?: (attempt: number) => number;
  region?: string;
  log?: (message: string) => void;
}

export class EsmEmulator {
  readonly mappings: EventSourceMapping[] = [];
  readonly #options: EmulatorOptions;
  #producer: Producer<Buffer, Buffer, string, Buffer> | undefined;
  /** Function name -> the handler its ESMs invoke, for the Lambda API's Invoke. */
  readonly #functions = new Map<string, { definition: EsmDefinition; handler: EsmHandler }>();

  constructor(options: EmulatorOptions) {
    this.#options = options;
  }

  /** Creates every mapping and starts the enabled ones. */
  async start(): Promise<void> {
    for (const definition of this.#options.definitions) {
      const handler = await this.#handlerFor(definition);
      if (!this.#functions.has(definition.functionName))
        this.#functions.set(definition.functionName, { definition, handler });
      const mapping = new EventSourceMapping({
        definition,
        brokers: this.#options.brokers,
        handler,
        ...(definition.destination
          ? { writeDestination: destinationWriter(definition.destination, this.#destinationDeps()) }
          : {}),
        ...(this.#options.retryDelayMs ? { retryDelayMs: this.#options.retryDelayMs } : {}),
        ...(this.#options.region ? { region: this.#options.region } : {}),
        ...(this.#options.log ? { log: this.#options.log } : {}),
      });
      this.mappings.push(mapping);
    }
    await Promise.all(this.mappings.filter((m) => m.definition.enabled).map((m) => m.start()));
  }

  /** Kafka-topic destinations are on the same cluster: one lazily created producer for all of them. */
  #destinationDeps(): DestinationDeps {
    const given = this.#options.destinations ?? {};
    if (given.producer) return given;
    return {
      ...given,
      producer: async () => {
        this.#producer ??= new Producer<Buffer, Buffer, string, Buffer>({
          clientId: 'esm-on-failure',
          bootstrapBrokers: this.#options.brokers,
          idempotent: true,
          serializers: { headerKey: stringSerializer },
        });
        return this.#producer;
      },
    };
  }

  find(uuid: string): EventSourceMapping | undefined {
    return this.mappings.find((m) => m.definition.uuid === uuid);
  }

  /** Like UpdateEventSourceMapping Enabled: returns at once, the transition completes in the background. */
  setEnabled(uuid: string, enabled: boolean): EventSourceMapping {
    const mapping = this.find(uuid);
    if (!mapping) throw new Error(`No event source mapping ${uuid}`);
    const transition = enabled ? mapping.start() : mapping.stop();
    transition.catch((error: Error) =>
      this.#log(`${enabled ? 'enabling' : 'disabling'} ${uuid}: ${error.message}`),
    );
    return mapping;
  }

  /**
   * Invokes a function with an event, as Lambda's Invoke (RequestResponse) does: the same handler (the
   * function's worker threads under `dev`) and timeout as its ESM batches. Undefined for an unknown function.
   */
  invoke(functionName: string, event: unknown): Promise<InvocationResult> | undefined {
    const fn = this.#functions.get(functionName);
    if (!fn) return undefined;
    return invokeHandler(fn.handler, event as never, {
      functionName,
      timeoutSeconds: fn.definition.timeoutSeconds,
      memorySize: fn.definition.memorySize,
      region: this.#options.region ?? process.env.AWS_REGION ?? 'eu-west-1',
      accountId: '000000000000',
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.mappings.map((m) => m.stop()));
    await this.#producer?.close();
    this.#producer = undefined;
  }

  async #handlerFor(definition: EsmDefinition): Promise<EsmHandler> {
    const injected =
      this.#options.handlers?.[definition.uuid] ?? this.#options.handlers?.[definition.functionKey];
    if (injected) return injected;
    if (this.#options.loadHandler) return this.#options.loadHandler(definition);
    return resolveHandler(definition.handler);
  }

  #log(message: string): void {
    (this.#options.log ?? ((m: string) => console.error(m)))(message);
  }
}
