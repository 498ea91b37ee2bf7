-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "quota" JSONB;
