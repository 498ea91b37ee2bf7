import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { AppError } from '../errors/app-error.js';
import { parseUrdf, UrdfError } from './urdf.js';

// SO-101 arm from TheRobotStudio/SO-ARM100 (Apache-2.0, licence beside the file in test/fixtures).
const so101Url = new URL('../../../../test/fixtures/urdf/so101/so101_new_calib.urdf', import.meta.url);

/** Joins lines with "\n" so each test can state the line its mistake is on. */
function lines(...content: string[]): string {
  return content.join('\n');
}

function parseError(xml: string): UrdfError {
  try {
    parseUrdf(xml);
  } catch (error) {
    if (error instanceof UrdfError) return error;
    throw error;
  }
  throw new Error('expected parseUrdf to throw');
}

function expectError(xml: string, expected: { code: string; line: number; mentions?: string }): UrdfError {
  const error = parseError(xml);
  expect({ code: error.code, line: error.line }).toEqual({ code: expected.code, line: expected.line });
  expect(error.message).toMatch(new RegExp(`^line ${expected.line}, column \\d+: `));
  if (expected.mentions !== undefined) expect(error.message).toContain(expected.mentions);
  return error;
}

describe('parseUrdf on the SO-101 arm', () => {
  // Parsed per test so a parser failure shows up as failing tests, not as a suite that cannot load.
  const parseSo101 = () => parseUrdf(readFileSync(so101Url, 'utf8'));

  it('reads the robot name and the seven joints in document order, ignoring transmission joints', () => {
    const summary = parseSo101();
    expect(summary.format).toBe('urdf');
    expect(summary.robotName).toBe('so101_new_calib');
    expect(summary.joints.map((joint) => [joint.name, joint.type])).toEqual([
      ['gripper_frame_joint', 'fixed'],
      ['gripper', 'revolute'],
      ['wrist_roll', 'revolute'],
      ['wrist_flex', 'revolute'],
      ['elbow_flex', 'revolute'],
      ['shoulder_lift', 'revolute'],
      ['shoulder_pan', 'revolute'],
    ]);
  });

  it('reads parents, children and limits as the file states them', () => {
    const byName = new Map(parseSo101().joints.map((joint) => [joint.name, joint]));
    // so101_new_calib.urdf line 399: <limit effort="10" velocity="10" lower="-1.69" upper="1.69"/>
    expect(byName.get('elbow_flex')).toEqual({
      name: 'elbow_flex',
      type: 'revolute',
      parent: 'upper_arm_link',
      child: 'lower_arm_link',
      limits: { lower: -1.69, upper: 1.69, effort: 10, velocity: 10 },
    });
    expect(byName.get('gripper')?.limits).toEqual({ lower: -0.174533, upper: 1.74533, effort: 10, velocity: 10 });
    expect(byName.get('gripper_frame_joint')).toEqual({
      name: 'gripper_frame_joint',
      type: 'fixed',
      parent: 'gripper_link',
      child: 'gripper_frame_link',
    });
  });

  it('lists the links in document order', () => {
    expect(parseSo101().links).toEqual([
      'base_link',
      'shoulder_link',
      'upper_arm_link',
      'lower_arm_link',
      'wrist_link',
      'gripper_link',
      'gripper_frame_link',
      'moving_jaw_so101_v1_link',
    ]);
  });
});

describe('parseUrdf on small documents', () => {
  it('keeps only the limit attributes present, allows links declared after joints, ignores nested joints', () => {
    const summary = parseUrdf(
      lines(
        '<robot name="wheel_bot">',
        '  <joint name="axle" type="continuous">',
        '    <parent link="body"/><child link="wheel"/>',
        '    <limit effort="2.5" velocity="1e1"/>',
        '  </joint>',
        '  <joint name="mount" type="fixed"><parent link="body"/><child link="camera"/></joint>',
        '  <gazebo reference="axle"><joint name="ghost" type="bogus"/></gazebo>',
        '  <transmission name="t"><joint name="axle"><hardwareInterface>x</hardwareInterface></joint></transmission>',
        '  <link name="body"/><link name="wheel"/><link name="camera"/>',
        '</robot>',
      ),
    );
    expect(summary).toEqual({
      format: 'urdf',
      robotName: 'wheel_bot',
      joints: [
        { name: 'axle', type: 'continuous', parent: 'body', child: 'wheel', limits: { effort: 2.5, velocity: 10 } },
        { name: 'mount', type: 'fixed', parent: 'body', child: 'camera' },
      ],
      links: ['body', 'wheel', 'camera'],
    });
  });

  it('counts lines across CRLF line ends and a byte order mark', () => {
    const xml = '\uFEFF<robot name="r">\r\n  <link name="a"/>\r\n  <joint name="j" type="hinge"/>\r\n</robot>';
    const error = expectError(xml, { code: 'BODY_MODEL_INVALID', line: 3, mentions: '"hinge"' });
    expect(error.column).toBe(3);
  });
});

describe('parseUrdf rejects malformed XML', () => {
  it('points an unclosed tag at the line where it was opened', () => {
    const error = expectError(
      lines(
        '<robot name="r">', //
        '  <link name="a"/>',
        '  <link name="b">',
        '  <link name="c"/>',
        '</robot>',
      ),
      { code: 'BODY_MODEL_MALFORMED_XML', line: 3, mentions: '<link> is never closed' },
    );
    expect(error.column).toBe(3);
    expect(error).toBeInstanceOf(AppError);
    expect(error.kind).toBe('invalid');
  });

  it('points a document that ends inside an element at that element', () => {
    expectError(lines('<robot name="r">', '  <link name="a"/>', ''), {
      code: 'BODY_MODEL_MALFORMED_XML',
      line: 1,
      mentions: '<robot> is never closed',
    });
  });

  it('points a mistyped closing tag at itself', () => {
    expectError(lines('<robot name="r">', '  <link name="a"/>', '</robto>'), {
      code: 'BODY_MODEL_MALFORMED_XML',
      line: 3,
      mentions: '</robto>',
    });
  });

  it('rejects an undefined entity', () => {
    expectError(lines('<robot name="r">', '  <link name="a&nbsp;b"/>', '</robot>'), {
      code: 'BODY_MODEL_MALFORMED_XML',
      line: 2,
      mentions: 'entity',
    });
  });

  it('rejects garbage', () => {
    expectError('this is not a URDF', { code: 'BODY_MODEL_MALFORMED_XML', line: 1 });
  });

  it('rejects empty input', () => {
    expectError('', { code: 'BODY_MODEL_MALFORMED_XML', line: 1, mentions: 'root element' });
  });

  it('rejects text after the root element', () => {
    expectError(lines('<robot name="r">', '</robot>', 'trailing words'), {
      code: 'BODY_MODEL_MALFORMED_XML',
      line: 3,
      mentions: 'outside of root',
    });
  });

  it('reports broken XML before URDF mistakes earlier in the file', () => {
    expectError(lines('<robot name="r">', '  <joint name="j" type="hinge"/>', '</robot>', '<robot/>'), {
      code: 'BODY_MODEL_MALFORMED_XML',
      line: 4,
    });
  });
});

describe('parseUrdf rejects DOCTYPE entity declarations instead of expanding them', () => {
  it('rejects a billion-laughs document', () => {
    const error = expectError(
      lines(
        '<?xml version="1.0"?>',
        '<!DOCTYPE robot [',
        '  <!ENTITY lol "lol">',
        '  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
        ']>',
        '<robot name="&lol2;"/>',
      ),
      { code: 'BODY_MODEL_INVALID', line: 2, mentions: 'entities' },
    );
    expect(error.message).not.toContain('lollol');
  });

  it('rejects an external entity (XXE) even when it is never referenced', () => {
    expectError(lines('<!DOCTYPE robot [<!ENTITY secret SYSTEM "file:///etc/passwd">]>', '<robot name="r"/>'), {
      code: 'BODY_MODEL_INVALID',
      line: 1,
    });
  });
});

describe('parseUrdf rejects XML that is not a valid URDF', () => {
  it('rejects a root element other than <robot>', () => {
    const error = expectError(lines('<?xml version="1.0"?>', '<!-- a world file -->', '<sdf version="1.6"><model name="m"/></sdf>'), {
      code: 'BODY_MODEL_NOT_URDF',
      line: 3,
      mentions: '<sdf>',
    });
    expect(error.kind).toBe('unprocessable');
  });

  it('rejects a <robot> without a name', () => {
    expectError(lines('<?xml version="1.0"?>', '<robot>', '  <link name="a"/>', '</robot>'), {
      code: 'BODY_MODEL_INVALID',
      line: 2,
      mentions: 'name',
    });
  });

  it('rejects an unknown joint type', () => {
    expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/><link name="b"/>',
        '  <joint name="j" type="hinge">',
        '    <parent link="a"/><child link="b"/>',
        '  </joint>',
        '</robot>',
      ),
      { code: 'BODY_MODEL_INVALID', line: 3, mentions: 'unknown type "hinge"' },
    );
  });

  it('rejects a joint without a type', () => {
    expectError(lines('<robot name="r">', '  <joint name="j">', '    <parent link="a"/><child link="b"/>', '  </joint>', '</robot>'), {
      code: 'BODY_MODEL_INVALID',
      line: 2,
      mentions: 'type',
    });
  });

  it('rejects a joint without a parent', () => {
    expectError(
      lines('<robot name="r">', '  <link name="b"/>', '  <joint name="j" type="fixed">', '    <child link="b"/>', '  </joint>', '</robot>'),
      {
        code: 'BODY_MODEL_INVALID',
        line: 3,
        mentions: '<parent',
      },
    );
  });

  it('rejects a joint without a child', () => {
    expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/>',
        '  <joint name="j" type="fixed">',
        '    <parent link="a"/>',
        '  </joint>',
        '</robot>',
      ),
      {
        code: 'BODY_MODEL_INVALID',
        line: 3,
        mentions: '<child',
      },
    );
  });

  it('rejects a non-numeric limit, naming the attribute', () => {
    const error = expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/><link name="b"/>',
        '  <joint name="j" type="prismatic">',
        '    <parent link="a"/><child link="b"/>',
        '    <limit lower="0" upper="${travel}" effort="1" velocity="1"/>',
        '  </joint>',
        '</robot>',
      ),
      { code: 'BODY_MODEL_INVALID', line: 5, mentions: '"upper"' },
    );
    expect(error.details).toMatchObject({ location: { line: 5, field: 'limit.upper' } });
  });

  it('rejects a revolute joint without <limit>, as the URDF spec requires one', () => {
    expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/><link name="b"/>',
        '  <joint name="j" type="revolute">',
        '    <parent link="a"/><child link="b"/>',
        '  </joint>',
        '</robot>',
      ),
      {
        code: 'BODY_MODEL_INVALID',
        line: 3,
        mentions: 'no <limit>',
      },
    );
  });

  it('rejects a duplicate link name at the second declaration', () => {
    expectError(lines('<robot name="r">', '  <link name="a"/>', '  <link name="b"/>', '  <link name="a"/>', '</robot>'), {
      code: 'BODY_MODEL_INVALID',
      line: 4,
      mentions: 'first declared at line 2',
    });
  });

  it('rejects a duplicate joint name at the second declaration', () => {
    expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/><link name="b"/><link name="c"/>',
        '  <joint name="j" type="fixed"><parent link="a"/><child link="b"/></joint>',
        '  <joint name="j" type="fixed"><parent link="b"/><child link="c"/></joint>',
        '</robot>',
      ),
      { code: 'BODY_MODEL_INVALID', line: 4, mentions: 'duplicate joint name "j"' },
    );
  });

  it('rejects a joint whose link is not declared, at the reference', () => {
    expectError(
      lines(
        '<robot name="r">',
        '  <link name="a"/>',
        '  <joint name="j" type="fixed">',
        '    <parent link="a"/>',
        '    <child link="missing"/>',
        '  </joint>',
        '</robot>',
      ),
      { code: 'BODY_MODEL_INVALID', line: 5, mentions: '"missing"' },
    );
  });
});
