/** The OpenAPI 3.0 document, generated from the same zod schemas the routes validate with. */
import { z } from 'zod';
import {
  errorSchema,
  kernelModelSchema,
  kernelspecModelSchema,
  kernelStartSchema,
  profileModelSchema,
  progressEventSchema,
  serverModelSchema,
  startRequestSchema,
} from './schemas';
import { adminPaths, adminSchemas } from './admin/openapi';

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' });

const errors = {
  '400': { description: 'Invalid input', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  '401': { description: 'Missing or invalid token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  '503': { description: 'Database or queue unavailable', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
};
const model = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Server' } } },
});
const userParam = { name: 'user', in: 'path', required: true, schema: { type: 'string' } };
const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };

function serverPaths(params: object[]) {
  return {
    post: {
      summary: 'Start a server (idempotent)',
      parameters: params,
      requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/StartRequest' } } } },
      responses: { '202': model('Start queued'), '200': model('Already pending or running'), '409': errors['400'], ...errors },
    },
    get: {
      summary: 'Server status; `wait=ready` long-polls while pending',
      parameters: [
        ...params,
        { name: 'wait', in: 'query', schema: { type: 'string', enum: ['ready'] } },
        { name: 'timeout', in: 'query', schema: { type: 'number', maximum: 60 } },
      ],
      responses: { '200': model('Server'), '404': errors['400'], ...errors },
    },
    delete: {
      summary: 'Stop a server (idempotent); `wait=true` answers once stopped',
      parameters: [...params, { name: 'wait', in: 'query', schema: { type: 'string', enum: ['true'] } }],
      responses: { '202': model('Stop queued'), '200': model('Stopped'), '404': errors['400'], ...errors },
    },
  };
}

function progressPath(params: object[]) {
  return {
    get: {
      summary: 'Progress of the current start as Server-Sent Events (`data: ProgressEvent`)',
      parameters: params,
      responses: { '200': { description: 'event stream', content: { 'text/event-stream': { schema: { $ref: '#/components/schemas/ProgressEvent' } } } } },
    },
  };
}

const kernelIdParam = { name: 'kernel_id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const kernelRef = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Kernel' } } } };
const gatewayForbidden = {
  description: "Refused: quota or membership, another user, a deactivated user, or the hub token (it is for the hub's routes only)",
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};
const missing = { description: 'No such kernel (or not yours)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

/** Enterprise-Gateway-compatible routes; a per-user gateway token acts as its user only. */
function gatewayPaths() {
  return {
    '/api': { get: { summary: 'Gateway version', responses: { '200': { description: "version, EG's gateway_version (the same), gateway: spawngate" } } } },
    '/api/kernelspecs': {
      get: {
        summary: "The caller's kernelspecs (their conda environments and kernels, plus authorized shared ones)",
        parameters: [{ name: 'user', in: 'query', schema: { type: 'string' } }],
        responses: {
          '200': { description: 'listing', content: { 'application/json': { schema: { type: 'object', properties: { default: { type: 'string' }, kernelspecs: { type: 'object', additionalProperties: { $ref: '#/components/schemas/Kernelspec' } } } } } } },
          '403': gatewayForbidden,
          ...errors,
        },
      },
    },
    '/api/kernelspecs/{name}': {
      get: {
        summary: 'One kernelspec',
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'kernelspec', content: { 'application/json': { schema: { $ref: '#/components/schemas/Kernelspec' } } } }, '404': missing, '403': gatewayForbidden, ...errors },
      },
    },
    '/kernelspecs/{name}/{resource}': {
      get: {
        summary: 'A kernelspec resource (logo, kernel.js)',
        parameters: [
          { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'resource', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'the file, with its content type' }, '404': missing, '403': gatewayForbidden, ...errors },
      },
    },
    '/api/kernels': {
      get: { summary: "The caller's kernels", responses: { '200': { description: 'kernels', content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Kernel' } } } } }, '403': gatewayForbidden, ...errors } },
      post: {
        summary: "Start a kernel in the kernelspec's environment with its experiment's limits; answers once it replies to kernel_info",
        requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/KernelStart' } } } },
        responses: { '201': { description: 'started', ...kernelRef }, '403': gatewayForbidden, '404': missing, '500': { description: "launch failed: the backend's or kernel's reason" }, ...errors },
      },
    },
    '/api/kernels/{kernel_id}': {
      get: { summary: 'One kernel', parameters: [kernelIdParam], responses: { '200': { description: 'kernel', ...kernelRef }, '404': missing, '403': gatewayForbidden, ...errors } },
      delete: { summary: 'Shut down (idempotent)', parameters: [kernelIdParam], responses: { '204': { description: 'shut down' }, '404': missing, '403': gatewayForbidden, ...errors } },
    },
    '/api/kernels/{kernel_id}/interrupt': {
      post: { summary: 'Interrupt (signal or interrupt_request per interrupt_mode)', parameters: [kernelIdParam], responses: { '204': { description: 'interrupted' }, '404': missing, '403': gatewayForbidden, ...errors } },
    },
    '/api/kernels/{kernel_id}/restart': {
      post: { summary: 'Restart with the same connection info', parameters: [kernelIdParam], responses: { '200': { description: 'restarted', ...kernelRef }, '404': missing, '403': gatewayForbidden, ...errors } },
    },
    '/api/kernels/{kernel_id}/channels': {
      get: { summary: 'WebSocket: Jupyter messages (JSON text frames; binary frames with buffers; v1.kernel.websocket.jupyter.org)', parameters: [kernelIdParam, { name: 'session_id', in: 'query', schema: { type: 'string' } }], responses: { '101': { description: 'switching protocols; an open socket is closed with 1008 (policy violation, the reason in the close frame) within about 2 s once its token is revoked or expires, its server stops, or its user is deactivated' }, '401': errors['401'], '403': gatewayForbidden, '404': missing } },
    },
  };
}

export function buildOpenApiDocument(version: string): object {
  return {
    openapi: '3.0.3',
    info: {
      title: 'spawngate',
      version,
      description: 'Hub API for spawngate.RemoteSpawner, the Enterprise-Gateway-compatible kernel gateway, the admin API, health and metrics.',
    },
    components: {
      securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`token <value>`, or `Bearer <OIDC access token>` when OIDC is configured' } },
      schemas: {
        StartRequest: json(startRequestSchema, 'input'),
        Server: json(serverModelSchema),
        Profile: json(profileModelSchema),
        ProgressEvent: json(progressEventSchema),
        Error: json(errorSchema),
        Kernel: json(kernelModelSchema),
        KernelStart: json(kernelStartSchema, 'input'),
        Kernelspec: json(kernelspecModelSchema),
        ...adminSchemas(),
      },
    },
    security: [{ token: [] }],
    paths: {
      '/api/users/{user}/profiles': {
        get: {
          summary: 'Profiles this user may choose',
          parameters: [userParam],
          responses: {
            '200': {
              description: 'profiles',
              content: { 'application/json': { schema: { type: 'object', properties: { profiles: { type: 'array', items: { $ref: '#/components/schemas/Profile' } } } } } },
            },
            ...errors,
          },
        },
      },
      '/api/users/{user}/server': serverPaths([userParam]),
      '/api/users/{user}/servers/{name}': serverPaths([userParam, nameParam]),
      '/api/users/{user}/server/progress': progressPath([userParam]),
      '/api/users/{user}/servers/{name}/progress': progressPath([userParam, nameParam]),
      '/api/servers': {
        get: {
          summary: 'All servers, or one user\'s',
          parameters: [{ name: 'user', in: 'query', schema: { type: 'string' } }],
          responses: {
            '200': { description: 'servers', content: { 'application/json': { schema: { type: 'object', properties: { servers: { type: 'array', items: { $ref: '#/components/schemas/Server' } } } } } } },
            ...errors,
          },
        },
      },
      ...gatewayPaths(),
      ...adminPaths(),
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { summary: 'Readiness: database and queue answer', security: [], responses: { '200': { description: 'ready' }, '503': errors['503'] } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'text exposition format' } } } },
    },
  };
}
