import { join } from 'node:path';
import ts from 'typescript';
import { buildOpenApiDocument } from '../../../src/http/openapi';

/**
 * The client package keeps its own copy of the internal API's shapes (it cannot import the
 * broker). This test reads those TypeScript declarations with the compiler and compares them with
 * the OpenAPI document the broker serves, which test/integration/openapi.test.ts keeps true to
 * what the broker answers: a field added, removed, made optional or nullable, or a code or enum
 * value added on one side and not the other fails here.
 */
const TYPES_FILE = join(__dirname, '..', '..', '..', 'packages', 'client', 'src', 'types.ts');

type Schema = Record<string, any>;

interface Field {
  optional: boolean;
  nullable: boolean;
  /** The string literals of the field's type, when it is a union of them (plus maybe `string & {}`). */
  literals: string[];
}

const program = ts.createProgram([TYPES_FILE], {
  strict: true,
  noEmit: true,
  types: [],
  target: ts.ScriptTarget.ES2022,
});
const checker = program.getTypeChecker();
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(TYPES_FILE)!)!;
const exported = new Map(checker.getExportsOfModule(moduleSymbol).map((s) => [s.name, s]));

function declaredType(name: string): ts.Type {
  const symbol = exported.get(name);
  if (!symbol) throw new Error(`packages/client/src/types.ts exports no ${name}`);
  return checker.getDeclaredTypeOfSymbol(symbol);
}

function literalsOf(type: ts.Type): string[] {
  const parts = type.isUnion() ? type.types : [type];
  return parts.filter((t): t is ts.StringLiteralType => t.isStringLiteral()).map((t) => t.value);
}

/** The named fields of an object type (an index signature such as `[field: string]: unknown` aside). */
function fieldsOf(type: ts.Type): Map<string, Field> {
  const fields = new Map<string, Field>();
  for (const property of checker.getPropertiesOfType(type)) {
    const propertyType = checker.getNonNullableType(checker.getTypeOfSymbol(property));
    const full = checker.getTypeOfSymbol(property);
    const parts = full.isUnion() ? full.types : [full];
    fields.set(property.name, {
      optional: (property.flags & ts.SymbolFlags.Optional) !== 0,
      nullable: parts.some((t) => (t.flags & ts.TypeFlags.Null) !== 0),
      literals: literalsOf(propertyType),
    });
  }
  return fields;
}

const document = buildOpenApiDocument() as { components: { schemas: Record<string, Schema> } };
const schemas = document.components.schemas;

function resolve(schema: Schema): Schema {
  if (typeof schema.$ref === 'string') return schemas[schema.$ref.split('/').pop()!]!;
  return schema;
}

function schemaNullable(schema: Schema): boolean {
  const s = resolve(schema);
  const types = Array.isArray(s.type) ? s.type : [s.type];
  return types.includes('null') || (s.anyOf ?? s.oneOf ?? []).some((x: Schema) => schemaNullable(x));
}

function schemaLiterals(schema: Schema): string[] {
  const s = resolve(schema);
  if (typeof s.const === 'string') return [s.const];
  return Array.isArray(s.enum) ? s.enum : [];
}

/**
 * An answer's type must match the schema both ways: the same fields, required exactly where the
 * client says non-optional, null admitted where the broker may send it, and the same enum values.
 */
function expectAnswerMatches(typeName: string, type: ts.Type, schema: Schema): void {
  const fields = fieldsOf(type);
  const properties = schema.properties as Record<string, Schema>;
  expect({ [typeName]: [...fields.keys()].sort() }).toEqual({ [typeName]: Object.keys(properties).sort() });
  const required = new Set<string>(schema.required ?? []);
  for (const [name, field] of fields) {
    const property = properties[name]!;
    expect({ field: `${typeName}.${name}`, optional: field.optional, nullable: field.nullable }).toEqual({
      field: `${typeName}.${name}`,
      optional: !required.has(name),
      nullable: schemaNullable(property),
    });
    const values = schemaLiterals(property);
    if (values.length > 0)
      expect({ field: `${typeName}.${name}`, values: field.literals.sort() }).toEqual({
        field: `${typeName}.${name}`,
        values: [...values].sort(),
      });
  }
}

describe('the client package’s types agree with the OpenAPI document of the internal API', () => {
  it.each([
    ['Connection', 'Connection'],
    ['ConnectionPage', 'ConnectionPage'],
    ['ConnectSession', 'ConnectSession'],
    ['ConnectionLastError', 'LastError'],
  ])('%s matches schema %s', (typeName, schemaName) => {
    expectAnswerMatches(typeName, declaredType(typeName), schemas[schemaName]!);
  });

  it('ProviderInfo matches an entry of ProviderList', () => {
    const entry = schemas.ProviderList!.properties.providers.items as Schema;
    // ProviderInfo names the fields every provider has; the optional extras ride its index signature.
    const required = Object.fromEntries((entry.required as string[]).map((n) => [n, entry.properties[n]]));
    expectAnswerMatches('ProviderInfo', declaredType('ProviderInfo'), { ...entry, properties: required });
  });

  it('TokenAnswer is the union of the Token schema’s alternatives, told apart by auth_mode', () => {
    const union = declaredType('TokenAnswer');
    expect(union.isUnion()).toBe(true);
    const members = (union as ts.UnionType).types;
    const alternatives = schemas.Token!.oneOf as Schema[];
    expect(members).toHaveLength(alternatives.length);
    for (const alternative of alternatives) {
      const mode = alternative.properties.auth_mode.const as string;
      const member = members.find((m) => fieldsOf(m).get('auth_mode')?.literals.includes(mode));
      expect({ mode, found: member !== undefined }).toEqual({ mode, found: true });
      expectAnswerMatches(`TokenAnswer(${mode})`, member!, alternative);
    }
  });

  it('ProblemBody has the Problem schema’s fields, and ProblemCode names every code the broker sends', () => {
    const problem = schemas.Problem!;
    expectAnswerMatches('ProblemBody', declaredType('ProblemBody'), {
      ...problem,
      // ProblemCode stays open (`string & {}`) so a newer broker's code does not break a build;
      // the codes it lists are compared below.
      properties: { ...problem.properties, code: { type: 'string' } },
    });
    const codes = literalsOf(declaredType('ProblemCode')).sort();
    expect(codes).toEqual([...(problem.properties.code.enum as string[])].sort());
  });

  it.each([
    ['ConnectSessionRequest', 'ConnectSessionRequest'],
    ['ImportRequest', 'ImportRequest'],
  ])('request %s names exactly the fields of schema %s', (typeName, schemaName) => {
    const type = declaredType(typeName);
    const members = type.isUnion() ? type.types : [type];
    const names = new Set(members.flatMap((m) => [...fieldsOf(m).keys()]));
    expect({ [typeName]: [...names].sort() }).toEqual({
      [typeName]: Object.keys(schemas[schemaName]!.properties).sort(),
    });
    // What the schema requires, every alternative of the client's type requires too.
    for (const member of members)
      for (const name of schemas[schemaName]!.required ?? [])
        expect({ field: `${typeName}.${name}`, optional: fieldsOf(member).get(name)?.optional }).toEqual({
          field: `${typeName}.${name}`,
          optional: false,
        });
  });
});
