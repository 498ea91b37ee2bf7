-- AlterTable
ALTER TABLE "uploads" ADD COLUMN     "options" JSONB;
