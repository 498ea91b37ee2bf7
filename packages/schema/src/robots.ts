import { z } from 'zod';

export const actionSpaces = ['joint_position', 'joint_velocity', 'eef_pose', 'eef_delta_pose', 'other'] as const;
/** How a robot's actions (and, optionally, its state) are expressed. */
export const actionSpaceSchema = z.enum(actionSpaces);
export type ActionSpace = z.infer<typeof actionSpaceSchema>;

const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.\-/]+$/, 'letters, digits, and _ . - / only');

/** A camera on the robot; a bare string is shorthand for `{ name }`. */
export const cameraSchema = z.union([
  identifier.transform((name) => ({ name })),
  z.strictObject({
    name: identifier,
    width: z.number().int().positive().max(65536).optional(),
    height: z.number().int().positive().max(65536).optional(),
    fps: z.number().positive().max(10000).optional(),
  }),
]);
export type Camera = { name: string; width?: number; height?: number; fps?: number };

export const createRobotRequestSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    robotType: z.string().trim().min(1).max(200),
    controlFrequencyHz: z.number().positive().max(100000),
    actionSpace: actionSpaceSchema,
    stateSpace: actionSpaceSchema.optional(),
    jointNames: z.array(identifier).max(1000).optional(),
    cameras: z.array(cameraSchema).max(64).optional(),
  })
  .superRefine((robot, context) => {
    reportDuplicates(robot.jointNames ?? [], ['jointNames'], context);
    reportDuplicates(
      (robot.cameras ?? []).map((camera) => camera.name),
      ['cameras'],
      context,
    );
  });
export type CreateRobotRequest = z.infer<typeof createRobotRequestSchema>;

function reportDuplicates(names: string[], path: string[], context: z.RefinementCtx): void {
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (seen.has(name)) context.addIssue({ code: 'custom', path: [...path, index], message: `duplicate name "${name}"` });
    seen.add(name);
  });
}

/** A joint of a parsed body model. Limits are in the URDF's units (rad or m, rad/s or m/s, N·m or N). */
export interface BodyModelJoint {
  name: string;
  type: 'revolute' | 'continuous' | 'prismatic' | 'fixed' | 'floating' | 'planar';
  parent: string;
  child: string;
  limits?: { lower?: number; upper?: number; effort?: number; velocity?: number };
}

/** What Kura keeps of a body model after parsing it; the original file stays in the blob store. */
export interface BodyModelSummary {
  format: 'urdf';
  robotName: string;
  joints: BodyModelJoint[];
  links: string[];
}

/** A robot (embodiment) as the API shows it. */
export interface RobotView {
  id: string;
  name: string;
  robotType: string;
  controlFrequencyHz: number;
  actionSpace: ActionSpace;
  stateSpace: ActionSpace | null;
  jointNames: string[];
  cameras: Camera[];
  ownerKeyId: string;
  bodyModel: BodyModelSummary | null;
  createdAt: string;
  updatedAt: string;
}
