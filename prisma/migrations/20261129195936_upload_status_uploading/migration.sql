-- AlterEnum
ALTER TYPE "UploadStatus" ADD VALUE 'uploading';
