import { join } from 'node:path';
import ts from 'typescript';
import { agreement } from './client-schema-agreement';

/**
 * The client package's types (packages/client/src/types.ts, written by hand: the package has no
 * runtime dependency) are the types of the broker's schemas (src/http/schemas/), from which the
 * broker's input checks, its types and the OpenAPI document come. client-schema-agreement.ts says
 * so type by type; its type-check fails when a field, an optional or nullable mark or an enum
 * value is on one side and not the other.
 */
const AGREEMENT = join(__dirname, 'client-schema-agreement.ts');
const CLIENT_TYPES = join(__dirname, '..', '..', '..', 'packages', 'client', 'src', 'types.ts');

describe('the client package’s types are the types of the broker’s schemas', () => {
  it('type-checks: every client type equals the type of its schema', () => {
    // The test runner compiles without type-checking (isolatedModules), so the check runs here.
    const program = ts.createProgram([AGREEMENT], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0;
      const text = d.file ? d.file.text.split('\n')[line - 1]!.trim() : '';
      return `${d.file?.fileName.split('/').pop()}:${line} (${text}): ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
    expect(problems).toEqual([]);
  }, 120_000); // a type-check of zod's types takes seconds

  it('compares every type the client package exports', () => {
    const program = ts.createProgram([CLIENT_TYPES], { noEmit: true, types: [] });
    const checker = program.getTypeChecker();
    const names = checker
      .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(CLIENT_TYPES)!)!)
      .map((s) => s.name);
    // ApiKeyAnswer and OAuthTokenAnswer are the two halves of TokenAnswer.
    const halves = ['ApiKeyAnswer', 'OAuthTokenAnswer'];
    expect(names.filter((n) => !(n in agreement) && !halves.includes(n))).toEqual([]);
  });
});
