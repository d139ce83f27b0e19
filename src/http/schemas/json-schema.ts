import { z } from 'zod';

type JsonSchema = Record<string, unknown>;

/**
 * The components of an OpenAPI 3.1 document (whose schemas are JSON Schema 2020-12), generated
 * from the zod schemas named here; a schema used inside another becomes a `$ref`. Requests are
 * described as callers write them (`io: 'input'`: before a default or a clean-up applies).
 */
export function componentSchemas(named: Record<string, z.ZodType>): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, JsonSchema> };
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, tidy(schema) as JsonSchema]));
}

/**
 * The OpenAPI parameters of a query string (`in: query`), one per field of `schema`, in its order:
 * a field's description goes on its parameter, and a list is a repeated parameter (`?tag=a&tag=b`).
 */
export function queryParameters(schema: z.ZodObject): Array<Record<string, unknown>> {
  const object = tidy(z.toJSONSchema(schema, { io: 'input' })) as {
    properties: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(object.properties).map(([name, { description, ...fieldSchema }]) => ({
    name,
    in: 'query',
    ...(object.required?.includes(name) ? { required: true } : {}),
    ...(description === undefined ? {} : { description }),
    ...(fieldSchema.type === 'array' ? { style: 'form', explode: true } : {}),
    schema: fieldSchema,
  }));
}

/**
 * What zod writes that says nothing to a reader of this document: each component's own `$schema`
 * and `$id` (the document fixes both), the safe-integer bounds of every integer, the `string` type
 * of JSON's property names, an empty tuple's `prefixItems` (`maxItems: 0` says it); and a value or
 * null as one `type` list, as JSON Schema 2020-12 allows.
 */
function tidy(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy);
  if (!node || typeof node !== 'object') return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (key === '$schema' || key === '$id') continue;
    if (key === 'maximum' && value === Number.MAX_SAFE_INTEGER) continue;
    if (key === 'minimum' && value === Number.MIN_SAFE_INTEGER) continue;
    if (key === 'propertyNames' && isPlainString(value)) continue;
    if (key === 'prefixItems' && Array.isArray(value) && value.length === 0) continue;
    out[key] = tidy(value);
  }
  if (out.items === false && out.prefixItems === undefined) delete out.items;
  return orNull(out);
}

function isPlainString(value: unknown): boolean {
  return (
    !!value &&
    typeof value === 'object' &&
    Object.keys(value).length === 1 &&
    (value as JsonSchema).type === 'string'
  );
}

/** `anyOf: [{ type: T, … }, { type: 'null' }]` as `{ type: [T, 'null'], … }`. */
function orNull(schema: JsonSchema): JsonSchema {
  const { anyOf, ...rest } = schema;
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return schema;
  const [value, none] = anyOf as JsonSchema[];
  if (none?.type !== 'null' || Object.keys(none).length !== 1) return schema;
  if (typeof value?.type !== 'string' || value.anyOf !== undefined) return schema;
  for (const key of Object.keys(value)) if (key in rest) return schema;
  return { ...rest, ...value, type: [value.type, 'null'] };
}
