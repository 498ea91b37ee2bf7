-- CreateTable
CREATE TABLE "usage_counters" (
    "key_id" TEXT NOT NULL,
    "bucket" TIMESTAMP(3) NOT NULL,
    "act_calls" INTEGER NOT NULL DEFAULT 0,
    "session_steps" INTEGER NOT NULL DEFAULT 0,
    "inference_ms" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "bytes_served" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "usage_counters_pkey" PRIMARY KEY ("key_id","bucket")
);
