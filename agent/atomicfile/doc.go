// Package atomicfile owns writing a file so that a reader sees the old or
// the new contents, never a part: a temporary file in the same directory,
// fsync, rename.
package atomicfile
