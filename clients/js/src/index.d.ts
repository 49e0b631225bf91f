import type { IncomingMessage, ServerResponse } from 'node:http';

export const BASE_TYPE: 'Ms.Qos.IncomingServiceRequest';
export const LIB_VERSION: '5.0.0';
export const STATUS_SUCCESS: 3;
export const STATUS_CALLER_ERROR: 4;
export const STATUS_SERVICE_ERROR: 6;

export interface EventInput {
  eventId: string;
  time: string;
  operation: string;
  latencyMs: number;
  requestStatus?: number | null;
  requestType?: string;
  caller?: string;
  scenario?: string | null;
  partner?: string | null;
  environment?: string;
  role?: string;
  roleInstance?: string;
  isTest?: boolean;
}

export interface TelemetryEvent {
  id: string;
  time: string;
  data: {
    baseType: string;
    cC: string;
    baseData: {
      operationName: string;
      callerName: string;
      requestType: string;
      latencyMs: number;
      requestStatus?: number;
    };
    isTest?: 'true';
  };
  ext: {
    cloud: { environment: string; role: string; roleInstance: string };
    sll: { libVer: string };
  };
}

export function buildEvent(input: EventInput): TelemetryEvent;
export function formatTime(moment: Date | number): string;
export function statusFromHttp(code: number): 3 | 4 | 6;
export function correlationContext(scenario?: string | null, partner?: string | null): string;
export function parseBaggage(header: string | string[] | undefined): { scenario?: string; partner?: string };

export interface Correlation {
  scenario?: string;
  partner?: string;
}
export function correlation<T>(options: Correlation, fn: () => T): T;

export interface Logger {
  warn(message: string): void;
  info?(message: string): void;
}

export interface ClientOptions {
  /** Base URL or full /v1/events URL; TELEMETRY_CLIENT_ENDPOINT, default http://127.0.0.1:8080. */
  endpoint?: string;
  /** TELEMETRY_CLIENT_TOKEN; required. */
  token?: string;
  environment?: string;
  role?: string;
  /** Default: os.hostname(). */
  roleInstance?: string;
  isTest?: boolean;
  batchSize?: number;
  /** Seconds. */
  flushInterval?: number;
  maxQueue?: number;
  /** Seconds per HTTP request. */
  timeout?: number;
  /** Seconds a batch is retried before it is counted failed. */
  retryDeadline?: number;
  /** Seconds the flush at process exit may take. */
  exitFlushTimeout?: number;
  logger?: Logger;
}

export interface RequestOptions {
  requestType?: string;
  caller?: string;
  scenario?: string;
  partner?: string;
  eventId?: string;
}

export interface RecordOptions extends RequestOptions {
  latencyMs: number;
  requestStatus?: number | null;
  time?: Date | number;
}

export class RequestScope {
  operation: string | undefined;
  requestType: string;
  caller: string;
  scenario: string | undefined;
  partner: string | undefined;
  eventId: string;
  httpStatus: number | null;
  status: number | null;
  readonly time: Date;
  requestStatus(failed: boolean): number;
  elapsedMs(): number;
}

export interface Stats {
  enqueued: number;
  dropped: number;
  accepted: number;
  rejected: number;
  failed: number;
  batches: number;
  retries: number;
  queued: number;
}

type Awaited<T> = T extends PromiseLike<infer U> ? U : T;

export class TelemetryClient {
  constructor(options?: ClientOptions);
  readonly endpoint: string;
  readonly environment: string;
  readonly role: string;
  readonly roleInstance: string;
  readonly isTest: boolean;
  static correlation: typeof correlation;
  correlation<T>(options: Correlation, fn: () => T): T;
  request<T>(operation: string, fn: (scope: RequestScope) => T): T extends PromiseLike<unknown> ? Promise<Awaited<T>> : T;
  request<T>(
    operation: string,
    options: RequestOptions,
    fn: (scope: RequestScope) => T,
  ): T extends PromiseLike<unknown> ? Promise<Awaited<T>> : T;
  track(operation?: string | RequestOptions, options?: RequestOptions): <F extends (...args: any[]) => any>(fn: F) => F;
  record(operation: string, options: RecordOptions): boolean;
  middleware(): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
  wrap<Req extends IncomingMessage, Res extends ServerResponse>(
    handler: (req: Req & { telemetry: RequestScope }, res: Res) => unknown,
  ): (req: Req, res: Res) => unknown;
  flush(timeoutSeconds?: number | null): Promise<boolean>;
  close(timeoutSeconds?: number | null): Promise<boolean>;
  stats(): Stats;
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by TelemetryClient.middleware() / wrap(). */
    telemetry?: RequestScope;
  }
}
