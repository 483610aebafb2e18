;; One dense layer with SIMD: out[o] = act(b[o] + sum_i w[o*n + i] * x[i]) for o < m.
;; w is row-major by output (the transpose of the usual layout), n is a multiple of 8, all f32.
;; Two f32x4 accumulators per row: lanes and the two partial sums are added in a fixed order, so
;; the result is the same on every machine (simd128 has no fused multiply-add).
(module
  (memory (export "memory") 1)
  (func (export "dense")
    (param $w i32) (param $b i32) (param $x i32) (param $out i32)
    (param $n i32) (param $m i32) (param $relu i32)
    (local $o i32) (local $i i32) (local $row i32) (local $xp i32)
    (local $a0 v128) (local $a1 v128) (local $s f32)
    (local.set $o (i32.const 0))
    (local.set $row (local.get $w))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $o) (local.get $m)))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $xp (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
            (local.set $a0
              (f32x4.add (local.get $a0)
                (f32x4.mul
                  (v128.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.load (local.get $xp)))))
            (local.set $a1
              (f32x4.add (local.get $a1)
                (f32x4.mul
                  (v128.load offset=16 (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.load offset=16 (local.get $xp)))))
            (local.set $i (i32.add (local.get $i) (i32.const 8)))
            (br $cols)))
        (local.set $a0 (f32x4.add (local.get $a0) (local.get $a1)))
        (local.set $s
          (f32.add
            (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))))
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
              (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0))))))
        (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
          (then (local.set $s (f32.const 0))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $o) (i32.const 2))) (local.get $s))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $rows))))
)
