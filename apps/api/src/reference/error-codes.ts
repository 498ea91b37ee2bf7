import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';
import type { ErrorKind } from '@kura/core';
import { statusByKind } from '../http/error-body.js';

/** An error code Kura defines, with the HTTP statuses its definitions carry (empty when none says). */
export interface DefinedErrorCode {
  code: string;
  /** Statuses from `kind` (through the error filter's map) or a literal status next to the code. */
  statuses: number[];
  /** Where it is defined: `packages/core/src/…/x.ts:12`, repository-relative. */
  sites: string[];
  /** The message of its first definition, `${…}` parts as `…`, when one is written next to it. */
  message: string | undefined;
}

const codePattern = /^[A-Z][A-Z0-9_]*[A-Z0-9]$/;
// The web viewer only shows the API's codes; its own are page states, not API errors.
const skippedApps = new Set(['web']);
const isSourceFile = (name: string) =>
  name.endsWith('.ts') && !name.endsWith('.d.ts') && !/\.(spec|int-spec|e2e-spec|contract)\.ts$/.test(name);

/** The TypeScript sources that can define error codes: `packages/<name>/src` and `apps/<name>/src`, tests left out. */
export function errorCodeSourceFiles(repositoryRoot: string): string[] {
  const files: string[] = [];
  const walk = (directory: string): void => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (entry.name !== 'testing' && entry.name !== 'fixtures' && entry.name !== 'node_modules') walk(join(directory, entry.name));
      } else if (isSourceFile(entry.name)) files.push(join(directory, entry.name));
    }
  };
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(repositoryRoot, group), { withFileTypes: true })) {
      if (!entry.isDirectory() || (group === 'apps' && skippedApps.has(entry.name))) continue;
      const source = join(repositoryRoot, group, entry.name, 'src');
      if (existsSync(source)) walk(source);
    }
  }
  return files.sort();
}

/**
 * Every error code defined in the sources, found by how codes are written here: a `code` property
 * (`new AppError({ code: 'X', kind })`, `warn({ code: 'X' })`), a `code` parameter's argument
 * (`new ImportError('X', …)`, `notFound('X', …)`), a `code` field's initializer, or a member of a
 * `…Code` union type. Comparisons (`error.code === 'X'`) use codes rather than define them.
 */
export function collectErrorCodes(repositoryRoot: string): DefinedErrorCode[] {
  const sources = errorCodeSourceFiles(repositoryRoot).map((path) =>
    ts.createSourceFile(relative(repositoryRoot, path).split(sep).join('/'), readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022, true),
  );
  const codeParameters = collectCodeParameters(sources);
  const codes = new Map<string, DefinedErrorCode>();
  for (const source of sources) {
    const visit = (node: ts.Node): void => {
      if (ts.isStringLiteral(node) && codePattern.test(node.text)) {
        const definition = definitionOf(node, codeParameters);
        if (definition) {
          const entry = codes.get(node.text) ?? { code: node.text, statuses: [], sites: [], message: undefined };
          if (definition.status !== undefined && !entry.statuses.includes(definition.status)) entry.statuses.push(definition.status);
          entry.sites.push(`${source.fileName}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
          entry.message ??= definition.message;
          codes.set(node.text, entry);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return [...codes.values()].map((entry) => ({ ...entry, statuses: entry.statuses.sort() })).sort((a, b) => a.code.localeCompare(b.code));
}

interface CodeParameter {
  index: number;
  /** The parameter that takes the message (`message` or `problem`), for the code's description. */
  messageIndex: number | undefined;
  /** The status of the AppError the function builds from its `code` parameter, when it builds one. */
  status: number | undefined;
}

/** Functions, methods and constructors with a parameter named `code`, by name (a class's name for its constructor). */
function collectCodeParameters(sources: ts.SourceFile[]): Map<string, CodeParameter[]> {
  const byName = new Map<string, CodeParameter[]>();
  const add = (name: string, declaration: ts.SignatureDeclaration) => {
    const named = (names: string[]) =>
      declaration.parameters.findIndex((parameter) => ts.isIdentifier(parameter.name) && names.includes(parameter.name.text));
    const index = named(['code']);
    if (index === -1) return;
    const messageIndex = named(['message', 'problem']);
    byName.set(name, [
      ...(byName.get(name) ?? []),
      { index, messageIndex: messageIndex === -1 ? undefined : messageIndex, status: passedThroughStatus(declaration) },
    ]);
  };
  for (const source of sources) {
    const visit = (node: ts.Node): void => {
      if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name && ts.isIdentifier(node.name))
        add(node.name.text, node);
      if (ts.isConstructorDeclaration(node) && ts.isClassDeclaration(node.parent) && node.parent.name) add(node.parent.name.text, node);
      if (
        ts.isVariableDeclaration(node) &&
        ts.isIdentifier(node.name) &&
        node.initializer &&
        (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))
      )
        add(node.name.text, node.initializer);
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return byName;
}

/** `(code) => new AppError({ code, kind: 'not_found', … })`: the status such a helper gives every code passed to it. */
function passedThroughStatus(declaration: ts.SignatureDeclaration): number | undefined {
  let status: number | undefined;
  const visit = (node: ts.Node): void => {
    if (
      ts.isObjectLiteralExpression(node) &&
      node.properties.some(
        (property) =>
          (ts.isShorthandPropertyAssignment(property) && property.name.text === 'code') ||
          (ts.isPropertyAssignment(property) &&
            propertyName(property) === 'code' &&
            ts.isIdentifier(property.initializer) &&
            property.initializer.text === 'code'),
      )
    )
      status ??= statusOfObject(node);
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(declaration, visit);
  return status;
}

/** How a code literal is defined, or undefined when the literal is not a definition. */
function definitionOf(
  literal: ts.StringLiteral,
  codeParameters: Map<string, CodeParameter[]>,
): { status: number | undefined; message: string | undefined } | undefined {
  // `kind === x ? 'A' : 'B'` and `'A' as const` stand where the code goes.
  let node: ts.Node = literal;
  while (
    (ts.isConditionalExpression(node.parent) && node !== node.parent.condition) ||
    ts.isParenthesizedExpression(node.parent) ||
    ts.isAsExpression(node.parent) ||
    ts.isSatisfiesExpression(node.parent)
  )
    node = node.parent;
  const parent = node.parent;
  if (ts.isPropertyAssignment(parent) && parent.initializer === node && propertyName(parent) === 'code') {
    const object = parent.parent;
    return { status: statusOfObject(object) ?? literalStatusOf(object.parent), message: messageOf(propertyValue(object, 'message')) };
  }
  if (
    (ts.isPropertyDeclaration(parent) || ts.isParameter(parent) || ts.isVariableDeclaration(parent)) &&
    parent.initializer === node &&
    ts.isIdentifier(parent.name) &&
    parent.name.text === 'code'
  )
    return { status: undefined, message: undefined };
  if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments) {
    const index = parent.arguments.indexOf(node as ts.Expression);
    const callee = calleeName(parent.expression);
    const match = callee === undefined ? undefined : codeParameters.get(callee)?.find((candidate) => candidate.index === index);
    if (match)
      return {
        status: match.status ?? literalStatusOf(parent),
        message: match.messageIndex === undefined ? undefined : messageOf(parent.arguments[match.messageIndex]),
      };
  }
  if (ts.isLiteralTypeNode(parent)) {
    let type: ts.Node = parent.parent;
    while (ts.isUnionTypeNode(type) || ts.isParenthesizedTypeNode(type)) type = type.parent;
    if (ts.isTypeAliasDeclaration(type) && type.name.text.endsWith('Code')) return { status: undefined, message: undefined };
  }
  return undefined;
}

function propertyName(property: ts.PropertyAssignment): string | undefined {
  return ts.isIdentifier(property.name) || ts.isStringLiteral(property.name) ? property.name.text : undefined;
}

function propertyValue(object: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const property of object.properties)
    if (ts.isPropertyAssignment(property) && propertyName(property) === name) return property.initializer;
  return undefined;
}

/** `{ code, kind: 'invalid' }` → 400, through the error filter's one map. */
function statusOfObject(object: ts.ObjectLiteralExpression): number | undefined {
  const kind = propertyValue(object, 'kind');
  return kind && ts.isStringLiteral(kind) && isErrorKind(kind.text) ? statusByKind[kind.text] : undefined;
}

const isErrorKind = (text: string): text is ErrorKind => Object.hasOwn(statusByKind, text);

/** `sendError(response, 413, { code })`, `refuse(socket, 401, 'CODE', …)`: a status written beside the code. */
function literalStatusOf(node: ts.Node): number | undefined {
  if (!ts.isCallExpression(node) && !ts.isNewExpression(node)) return undefined;
  for (const argument of node.arguments ?? []) {
    if (ts.isNumericLiteral(argument) && Number(argument.text) >= 400 && Number(argument.text) <= 599) return Number(argument.text);
  }
  return undefined;
}

/** The called function's name; for `super(…)`, the class extended. */
function calleeName(expression: ts.Expression): string | undefined {
  if (ts.isIdentifier(expression)) return expression.text;
  if (ts.isPropertyAccessExpression(expression)) return expression.name.text;
  if (expression.kind === ts.SyntaxKind.SuperKeyword) {
    let node: ts.Node = expression;
    while (!ts.isClassDeclaration(node) && node.parent) node = node.parent;
    const base = ts.isClassDeclaration(node)
      ? node.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression
      : undefined;
    return base && ts.isIdentifier(base) ? base.text : undefined;
  }
  return undefined;
}

/** A message literal or template with its substitutions shown as `…`. */
function messageOf(expression: ts.Expression | undefined): string | undefined {
  if (!expression) return undefined;
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) return expression.text;
  if (ts.isTemplateExpression(expression))
    return expression.head.text + expression.templateSpans.map((span) => `…${span.literal.text}`).join('');
  return undefined;
}
