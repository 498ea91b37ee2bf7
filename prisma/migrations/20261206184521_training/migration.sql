-- CreateEnum
CREATE TYPE "TrainerStatus" AS ENUM ('validating', 'ready', 'rejected');

-- CreateEnum
CREATE TYPE "TrainingStatus" AS ENUM ('queued', 'preparing', 'running', 'succeeded', 'failed', 'cancelled');

-- CreateTable
CREATE TABLE "trainers" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "owner_key_id" TEXT NOT NULL,
    "status" "TrainerStatus" NOT NULL DEFAULT 'validating',
    "manifest" JSONB,
    "errors" JSONB NOT NULL DEFAULT '[]',
    "bundle_key" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "trainers_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "trainings" (
    "id" TEXT NOT NULL,
    "trainer_id" TEXT NOT NULL,
    "owner_key_id" TEXT NOT NULL,
    "status" "TrainingStatus" NOT NULL DEFAULT 'queued',
    "dry_run" BOOLEAN NOT NULL,
    "request" JSONB NOT NULL,
    "sources" JSONB NOT NULL,
    "resources" JSONB NOT NULL,
    "episode_count" INTEGER NOT NULL,
    "step_count" BIGINT NOT NULL,
    "beyond_access_episodes" INTEGER NOT NULL,
    "metrics" JSONB NOT NULL DEFAULT '{"series": {}, "truncated": false}',
    "log_key" TEXT,
    "policy_id" TEXT,
    "evaluation_ids" JSONB NOT NULL DEFAULT '[]',
    "error" JSONB,
    "cancel_requested" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "trainings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "trainers_owner_key_id_idx" ON "trainers"("owner_key_id");

-- CreateIndex
CREATE UNIQUE INDEX "trainings_policy_id_key" ON "trainings"("policy_id");

-- CreateIndex
CREATE INDEX "trainings_owner_key_id_idx" ON "trainings"("owner_key_id");

-- CreateIndex
CREATE INDEX "trainings_status_idx" ON "trainings"("status");

-- AddForeignKey
ALTER TABLE "trainings" ADD CONSTRAINT "trainings_trainer_id_fkey" FOREIGN KEY ("trainer_id") REFERENCES "trainers"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
