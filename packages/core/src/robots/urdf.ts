import { SaxesParser } from 'saxes';
import type { BodyModelJoint, BodyModelSummary } from '@kura/schema';
import { AppError } from '../errors/app-error.js';

/** The stable codes a URDF can be rejected with. */
export type UrdfErrorCode = 'BODY_MODEL_MALFORMED_XML' | 'BODY_MODEL_NOT_URDF' | 'BODY_MODEL_INVALID';

/**
 * A URDF that could not be read. `line` and `column` (both 1-based) point at the offending spot and
 * are repeated in the message (`line 12, column 5: …`) so a user can find it without the details.
 */
export class UrdfError extends AppError {
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(params: { code: UrdfErrorCode; problem: string; position: SourcePosition; field?: string }) {
    const { line, column } = params.position;
    super({
      code: params.code,
      // Broken XML is a bad request; well-formed XML that is not a usable URDF is unprocessable.
      kind: params.code === 'BODY_MODEL_MALFORMED_XML' ? 'invalid' : 'unprocessable',
      message: `line ${line}, column ${column}: ${params.problem}`,
      location: { line, ...(params.field === undefined ? {} : { field: params.field }) },
      details: { column },
    });
    this.name = 'UrdfError';
    this.line = line;
    this.column = column;
  }
}

interface SourcePosition {
  line: number;
  column: number;
}

interface OpenElement {
  name: string;
  position: SourcePosition;
}

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  position: SourcePosition;
}

interface JointElement {
  element: XmlElement;
  parents: XmlElement[];
  children: XmlElement[];
  limits: XmlElement[];
}

/** What the parse pass keeps: only the elements a summary is built from. */
interface UrdfDocument {
  root: XmlElement | undefined;
  links: XmlElement[];
  joints: JointElement[];
}

// Without namespace processing attributes arrive as plain strings and prefixes stay in names.
type PlainParserOptions = { xmlns: false; position: true };
type JointType = BodyModelJoint['type'];
type JointLimits = NonNullable<BodyModelJoint['limits']>;

const limitAttributes = ['lower', 'upper', 'effort', 'velocity'] as const satisfies ReadonlyArray<keyof JointLimits>;

/** Joint types whose `<limit>` the URDF spec makes mandatory. */
const jointTypesRequiringLimit: ReadonlySet<JointType> = new Set<JointType>(['revolute', 'prismatic']);

// A decimal number as URDF writes them ("-0.174533", "1e-9"); rejects what Number() would also
// accept but a URDF tool would not: "", "0x10", "Infinity".
const decimalNumber = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses a URDF document into the summary Kura keeps of a body model: the robot's name, its joints
 * (in document order, with limits) and its links.
 *
 * Only direct children of `<robot>` count, so the `<joint>` references inside `<transmission>` or
 * `<gazebo>` are ignored, as are materials and other extensions. Entities are never expanded: a
 * DOCTYPE that declares any is rejected, which rules out XXE and entity-expansion bombs.
 *
 * @throws {UrdfError} `BODY_MODEL_MALFORMED_XML` when the text is not well-formed XML,
 *   `BODY_MODEL_NOT_URDF` when the root element is not `<robot>`, `BODY_MODEL_INVALID` when the
 *   URDF breaks a rule of the spec (missing names, unknown joint types, undeclared links, …).
 */
export function parseUrdf(xml: string): BodyModelSummary {
  // A UTF-8 byte order mark is legal but would shift every column on line 1.
  const text = xml.startsWith('\uFEFF') ? xml.slice(1) : xml;
  const document = readDocument(text);
  return summarise(document);
}

/** Runs the XML through saxes, keeping the elements a summary needs with their positions. */
function readDocument(text: string): UrdfDocument {
  const locate = positionLocator(text);
  const parser = new SaxesParser<PlainParserOptions>({ xmlns: false, position: true });
  const document: UrdfDocument = { root: undefined, links: [], joints: [] };
  // Mirrors saxes' own stack of open elements so errors can point at where an element began.
  const openElements: OpenElement[] = [];
  let lastClosed: OpenElement | undefined;
  let currentJoint: JointElement | undefined;

  parser.on('error', (error) => {
    throw malformedXml(error.message, { text, parser, openElements, lastClosed }, locate);
  });

  parser.on('doctype', (doctype) => {
    if (/<!ENTITY/i.test(doctype)) {
      throw new UrdfError({
        code: 'BODY_MODEL_INVALID',
        problem: 'the DOCTYPE declares entities, which URDF does not use and Kura never expands',
        position: locate(text.lastIndexOf('<!DOCTYPE', parser.position)),
      });
    }
  });

  parser.on('opentagstart', (tag) => {
    // saxes reports the tag once its name has ended, so the "<name" it read lies just behind.
    const start = text.lastIndexOf(`<${tag.name}`, parser.position - tag.name.length - 2);
    openElements.push({ name: tag.name, position: locate(start) });
  });

  parser.on('opentag', (tag) => {
    const open = openElements.at(-1);
    if (open === undefined) return;
    const element: XmlElement = { name: tag.name, attributes: tag.attributes, position: open.position };
    const depth = openElements.length - 1;
    if (depth === 0) {
      document.root = element;
      return;
    }
    if (document.root?.name !== 'robot') return;
    if (depth === 1 && element.name === 'link') document.links.push(element);
    if (depth === 1 && element.name === 'joint') {
      currentJoint = { element, parents: [], children: [], limits: [] };
      document.joints.push(currentJoint);
    }
    if (depth === 2 && currentJoint !== undefined) {
      if (element.name === 'parent') currentJoint.parents.push(element);
      if (element.name === 'child') currentJoint.children.push(element);
      if (element.name === 'limit') currentJoint.limits.push(element);
    }
  });

  parser.on('closetag', () => {
    lastClosed = openElements.pop();
    // Closing anything at depth 1 ends the joint being read (or was not inside one).
    if (openElements.length === 1) currentJoint = undefined;
  });

  parser.write(text).close();
  return document;
}

/**
 * Turns a saxes error ("3:7: unclosed tag: link") into a UrdfError. saxes notices an element left
 * open only at the next closing tag or at the end of input; pointing at where that element began
 * is what lets the user fix it.
 */
function malformedXml(
  saxesMessage: string,
  context: {
    text: string;
    parser: SaxesParser<PlainParserOptions>;
    openElements: readonly OpenElement[];
    lastClosed: OpenElement | undefined;
  },
  locate: (index: number) => SourcePosition,
): UrdfError {
  const { text, parser, openElements, lastClosed } = context;
  const problem = saxesMessage.replace(/^\d+:\d+: /, '');
  // saxes' column is that of the next character, i.e. the 1-based column of the one it just read.
  const here: SourcePosition = { line: parser.line, column: Math.max(parser.column, 1) };
  const innermostOpen = openElements.at(-1);
  if (problem.startsWith('unclosed tag') && innermostOpen !== undefined) {
    return new UrdfError({
      code: 'BODY_MODEL_MALFORMED_XML',
      problem: `<${innermostOpen.name}> is never closed (the input ends at line ${here.line})`,
      position: innermostOpen.position,
    });
  }
  if (problem.startsWith('unexpected close tag') && lastClosed !== undefined) {
    const closeTagStart = text.lastIndexOf('</', parser.position - 1);
    const closingName = /^<\/([^\s>]*)/.exec(text.slice(closeTagStart))?.[1] ?? '';
    const closingPosition = locate(closeTagStart);
    // If an enclosing element carries that name, the inner element was left open; otherwise the
    // closing tag itself is the mistake (a typo such as </robto>).
    if (openElements.some((element) => element.name === closingName)) {
      return new UrdfError({
        code: 'BODY_MODEL_MALFORMED_XML',
        problem: `<${lastClosed.name}> is never closed (</${closingName}> at line ${closingPosition.line} closes its parent first)`,
        position: lastClosed.position,
      });
    }
    return new UrdfError({
      code: 'BODY_MODEL_MALFORMED_XML',
      problem: `</${closingName}> does not match the open <${lastClosed.name}> from line ${lastClosed.position.line}`,
      position: closingPosition,
    });
  }
  return new UrdfError({ code: 'BODY_MODEL_MALFORMED_XML', problem, position: here });
}

/** Builds and checks the summary once the XML is known to be well-formed. */
function summarise(document: UrdfDocument): BodyModelSummary {
  const { root } = document;
  if (root === undefined) {
    // saxes already rejects a document without a root; this keeps the types honest.
    throw new UrdfError({
      code: 'BODY_MODEL_MALFORMED_XML',
      problem: 'the document has no root element',
      position: { line: 1, column: 1 },
    });
  }
  if (root.name !== 'robot') {
    throw invalid(root, `the root element is <${root.name}>, not <robot>`, 'BODY_MODEL_NOT_URDF');
  }
  const robotName = requiredAttribute(root, 'name', '<robot>');

  const linkLines = new Map<string, number>();
  for (const link of document.links) {
    const name = requiredAttribute(link, 'name', '<link>');
    const firstLine = linkLines.get(name);
    if (firstLine !== undefined)
      throw invalid(link, `duplicate link name "${name}" (first declared at line ${firstLine})`, 'BODY_MODEL_INVALID', 'name');
    linkLines.set(name, link.position.line);
  }

  const jointLines = new Map<string, number>();
  const joints = document.joints.map((joint) => {
    const summary = summariseJoint(joint, linkLines);
    const firstLine = jointLines.get(summary.name);
    if (firstLine !== undefined) {
      throw invalid(
        joint.element,
        `duplicate joint name "${summary.name}" (first declared at line ${firstLine})`,
        'BODY_MODEL_INVALID',
        'name',
      );
    }
    jointLines.set(summary.name, joint.element.position.line);
    return summary;
  });

  return { format: 'urdf', robotName, joints, links: [...linkLines.keys()] };
}

function summariseJoint(joint: JointElement, declaredLinks: ReadonlyMap<string, number>): BodyModelJoint {
  const { element } = joint;
  const name = requiredAttribute(element, 'name', '<joint>');
  const label = `joint "${name}"`;
  const typeName = requiredAttribute(element, 'type', label);
  const type = toJointType(typeName);
  if (type === undefined) {
    throw invalid(
      element,
      `${label} has unknown type "${typeName}" (expected revolute, continuous, prismatic, fixed, floating or planar)`,
      'BODY_MODEL_INVALID',
      'type',
    );
  }
  const parent = linkReference(joint, 'parent', label, declaredLinks);
  const child = linkReference(joint, 'child', label, declaredLinks);

  const [limitElement, extraLimit] = joint.limits;
  if (extraLimit !== undefined) throw invalid(extraLimit, `${label} has more than one <limit>`);
  if (limitElement === undefined) {
    if (jointTypesRequiringLimit.has(type)) throw invalid(element, `${label} is ${type} and has no <limit>, which the URDF spec requires`);
    return { name, type, parent, child };
  }
  return { name, type, parent, child, limits: readLimits(limitElement, label) };
}

function linkReference(joint: JointElement, role: 'parent' | 'child', label: string, declaredLinks: ReadonlyMap<string, number>): string {
  const [reference, extra] = role === 'parent' ? joint.parents : joint.children;
  if (reference === undefined) throw invalid(joint.element, `${label} has no <${role} link="…"/>`);
  if (extra !== undefined) throw invalid(extra, `${label} has more than one <${role}>`);
  const link = requiredAttribute(reference, 'link', `<${role}> of ${label}`);
  if (!declaredLinks.has(link))
    throw invalid(reference, `${label} names ${role} link "${link}", which is not declared`, 'BODY_MODEL_INVALID', role);
  return link;
}

function readLimits(limit: XmlElement, label: string): JointLimits {
  const limits: JointLimits = {};
  for (const attribute of limitAttributes) {
    const raw = limit.attributes[attribute];
    if (raw === undefined) continue;
    const trimmed = raw.trim();
    if (!decimalNumber.test(trimmed)) {
      throw invalid(
        limit,
        `<limit> attribute "${attribute}" of ${label} is "${raw}", not a number`,
        'BODY_MODEL_INVALID',
        `limit.${attribute}`,
      );
    }
    limits[attribute] = Number(trimmed);
  }
  return limits;
}

function requiredAttribute(element: XmlElement, attribute: string, label: string): string {
  const value = element.attributes[attribute];
  if (value === undefined || value.trim() === '')
    throw invalid(element, `${label} has no ${attribute} attribute`, 'BODY_MODEL_INVALID', attribute);
  return value;
}

function invalid(element: XmlElement, problem: string, code: UrdfErrorCode = 'BODY_MODEL_INVALID', field?: string): UrdfError {
  return new UrdfError({ code, problem, position: element.position, ...(field === undefined ? {} : { field }) });
}

function toJointType(value: string): JointType | undefined {
  switch (value) {
    case 'revolute':
    case 'continuous':
    case 'prismatic':
    case 'fixed':
    case 'floating':
    case 'planar':
      return value;
    default:
      return undefined;
  }
}

/** Maps an index into `text` to a 1-based line and column, counting line ends as saxes does. */
function positionLocator(text: string): (index: number) => SourcePosition {
  const lineStarts = [0];
  for (const match of text.matchAll(/\r\n?|\n/g)) lineStarts.push(match.index + match[0].length);
  return (index) => {
    // Binary search for the last line starting at or before the index.
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if ((lineStarts[middle] ?? 0) <= index) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: index - (lineStarts[low] ?? 0) + 1 };
  };
}
