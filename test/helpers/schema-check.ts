/**
 * A small JSON Schema (2020-12, as OpenAPI 3.1 uses it) checker for the subset the broker's
 * OpenAPI document uses. A keyword outside that subset is reported, never silently ignored, so
 * the document cannot drift into something this checker does not check.
 *
 * `closed`: an object schema with `properties` and no `additionalProperties` also refuses
 * properties it does not list, so every field the API answers must be documented.
 */
export interface SchemaCheckOptions {
  /** The document `$ref`s resolve against. */
  root: unknown;
  closed?: boolean;
}

type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set([
  'description',
  'title',
  'default',
  'examples',
  'example',
  'deprecated',
  'readOnly',
  'writeOnly',
]);
const KEYWORDS = new Set([
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'oneOf',
  'anyOf',
  'not',
  'pattern',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'format',
]);

export function checkSchema(
  schema: unknown,
  value: unknown,
  options: SchemaCheckOptions,
  at = '$',
): string[] {
  if (schema === true || (isObject(schema) && Object.keys(schema).length === 0)) return [];
  if (!isObject(schema)) return [`${at}: schema is not an object`];
  const errors: string[] = [];
  for (const key of Object.keys(schema)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key))
      errors.push(`${at}: unsupported schema keyword "${key}"`);
  }
  if (typeof schema.$ref === 'string')
    return [...errors, ...checkSchema(resolveRef(options.root, schema.$ref), value, options, at)];

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => hasType(value, t)))
      return [...errors, `${at}: expected ${types.join(' or ')}, got ${describe(value)}`];
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => deepEqual(e, value))) {
    errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (schema.const !== undefined && !deepEqual(schema.const, value))
    errors.push(`${at}: must be ${JSON.stringify(schema.const)}`);

  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      errors.push(`${at}: does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      errors.push(`${at}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      errors.push(`${at}: longer than ${schema.maxLength}`);
    if (typeof schema.format === 'string') errors.push(...checkFormat(schema.format, value, at));
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum)
      errors.push(`${at}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum)
      errors.push(`${at}: above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      errors.push(`${at}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
      errors.push(`${at}: more than ${schema.maxItems} items`);
    if (schema.items !== undefined)
      value.forEach((item, i) => errors.push(...checkSchema(schema.items, item, options, `${at}[${i}]`)));
  }
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, unknown>;
    for (const name of (schema.required as string[] | undefined) ?? []) {
      if (!(name in value)) errors.push(`${at}: missing required property "${name}"`);
    }
    for (const [name, v] of Object.entries(value)) {
      const at2 = `${at}.${name}`;
      if (name in properties) errors.push(...checkSchema(properties[name], v, options, at2));
      else if (schema.additionalProperties === false)
        errors.push(`${at2}: not allowed (additionalProperties: false)`);
      else if (isObject(schema.additionalProperties))
        errors.push(...checkSchema(schema.additionalProperties, v, options, at2));
      else if (
        options.closed &&
        schema.properties !== undefined &&
        schema.additionalProperties === undefined
      ) {
        errors.push(`${at2}: undocumented property`);
      }
    }
  }
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as unknown[]).map((s) => checkSchema(s, value, options, at));
    const matches = results.filter((r) => r.length === 0).length;
    if (matches !== 1) {
      errors.push(
        `${at}: matches ${matches} of oneOf (exactly 1 required)${matches === 0 ? `: ${results.map((r) => r.join('; ')).join(' | ')}` : ''}`,
      );
    }
  }
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as unknown[]).map((s) => checkSchema(s, value, options, at));
    if (!results.some((r) => r.length === 0))
      errors.push(`${at}: matches none of anyOf: ${results.map((r) => r.join('; ')).join(' | ')}`);
  }
  if (
    schema.not !== undefined &&
    checkSchema(schema.not, value, { ...options, closed: false }, at).length === 0
  ) {
    errors.push(`${at}: matches a schema it must not (not)`);
  }
  return errors;
}

export function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(node) || !(key in node)) throw new Error(`unresolvable $ref ${ref}`);
    node = node[key];
  }
  return node;
}

function checkFormat(format: string, value: string, at: string): string[] {
  if (format === 'date-time') {
    const ok =
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
      Number.isFinite(Date.parse(value));
    return ok ? [] : [`${at}: not an RFC 3339 date-time`];
  }
  if (format === 'uri') {
    try {
      new URL(value);
      return [];
    } catch {
      return [`${at}: not a URI`];
    }
  }
  return [`${at}: unsupported format "${format}"`];
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      return false;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export type { Schema };
