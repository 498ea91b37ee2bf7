-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('open', 'ended', 'truncated');

-- CreateTable
CREATE TABLE "sessions" (
    "id" TEXT NOT NULL,
    "policy_id" TEXT NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "owner_key_id" TEXT NOT NULL,
    "task" TEXT,
    "status" "SessionStatus" NOT NULL DEFAULT 'open',
    "step_count" INTEGER NOT NULL DEFAULT 0,
    "success" BOOLEAN,
    "upload_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_step_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMP(3),

    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "session_steps" (
    "session_id" TEXT NOT NULL,
    "step_index" INTEGER NOT NULL,
    "observation" JSONB NOT NULL,
    "action" JSONB NOT NULL,
    "reward" DOUBLE PRECISION,
    "timestamp" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "session_steps_pkey" PRIMARY KEY ("session_id","step_index")
);

-- CreateIndex
CREATE INDEX "sessions_status_last_step_at_idx" ON "sessions"("status", "last_step_at");

-- AddForeignKey
ALTER TABLE "session_steps" ADD CONSTRAINT "session_steps_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
