;; One dense layer with SIMD: out[o] = act(b[o] + sum_i w[o*n + i] * x[i]) for o < m.
;; w is row-major by output (the transpose of the usual layout), n is a multiple of 8, all f32.
;; Two f32x4 accumulators per row: lanes and the two partial sums are added in a fixed order, so
;; the result is the same on every machine (simd128 has no fused multiply-add).
;;
;; dense_batch runs the same layer for nb inputs (input k at x + k*xs bytes, its output at
;; out + k*os bytes). Each weight row is loaded once per four inputs instead of once per input;
;; every input keeps its own two accumulators and the reduction above, so each output is
;; bit-identical to what dense gives for that input alone.
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

  (func (export "dense_batch")
    (param $w i32) (param $b i32) (param $x i32) (param $out i32)
    (param $n i32) (param $m i32) (param $relu i32)
    (param $nb i32) (param $xs i32) (param $os i32)
    (local $o i32) (local $i i32) (local $k i32) (local $row i32) (local $wp i32) (local $off i32)
    (local $bias f32) (local $s f32) (local $w0 v128) (local $w1 v128)
    (local $xp0 i32) (local $xp1 i32) (local $xp2 i32) (local $xp3 i32) (local $op i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $o (i32.const 0))
    (local.set $row (local.get $w))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $o) (local.get $m)))
        (local.set $bias (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $k (i32.const 0))
        ;; four inputs at a time: the row's two vectors are loaded once for all four
        (block $quads_done
          (loop $quads
            (br_if $quads_done (i32.gt_u (i32.add (local.get $k) (i32.const 4)) (local.get $nb)))
            (local.set $xp0 (i32.add (local.get $x) (i32.mul (local.get $k) (local.get $xs))))
            (local.set $xp1 (i32.add (local.get $xp0) (local.get $xs)))
            (local.set $xp2 (i32.add (local.get $xp1) (local.get $xs)))
            (local.set $xp3 (i32.add (local.get $xp2) (local.get $xs)))
            (local.set $a0 (v128.const f32x4 0 0 0 0)) (local.set $a1 (v128.const f32x4 0 0 0 0)) (local.set $a2 (v128.const f32x4 0 0 0 0)) (local.set $a3 (v128.const f32x4 0 0 0 0)) (local.set $a4 (v128.const f32x4 0 0 0 0)) (local.set $a5 (v128.const f32x4 0 0 0 0)) (local.set $a6 (v128.const f32x4 0 0 0 0)) (local.set $a7 (v128.const f32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $cols_done
              (loop $cols
                (br_if $cols_done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $off (i32.shl (local.get $i) (i32.const 2)))
                (local.set $wp (i32.add (local.get $row) (local.get $off)))
                (local.set $w0 (v128.load (local.get $wp)))
                (local.set $w1 (v128.load offset=16 (local.get $wp)))
                (local.set $a0
                  (f32x4.add (local.get $a0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $xp0) (local.get $off))))))
                (local.set $a1
                  (f32x4.add (local.get $a1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $xp0) (local.get $off))))))
                (local.set $a2
                  (f32x4.add (local.get $a2) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $xp1) (local.get $off))))))
                (local.set $a3
                  (f32x4.add (local.get $a3) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $xp1) (local.get $off))))))
                (local.set $a4
                  (f32x4.add (local.get $a4) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $xp2) (local.get $off))))))
                (local.set $a5
                  (f32x4.add (local.get $a5) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $xp2) (local.get $off))))))
                (local.set $a6
                  (f32x4.add (local.get $a6) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $xp3) (local.get $off))))))
                (local.set $a7
                  (f32x4.add (local.get $a7) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $xp3) (local.get $off))))))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $cols)))
            (local.set $a0 (f32x4.add (local.get $a0) (local.get $a1)))
            (local.set $s
              (f32.add (local.get $bias)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 0)) (local.get $os)))
                (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a2 (f32x4.add (local.get $a2) (local.get $a3)))
            (local.set $s
              (f32.add (local.get $bias)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a2)) (f32x4.extract_lane 1 (local.get $a2)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a2)) (f32x4.extract_lane 3 (local.get $a2))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 1)) (local.get $os)))
                (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a4 (f32x4.add (local.get $a4) (local.get $a5)))
            (local.set $s
              (f32.add (local.get $bias)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a4)) (f32x4.extract_lane 1 (local.get $a4)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a4)) (f32x4.extract_lane 3 (local.get $a4))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 2)) (local.get $os)))
                (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $a6 (f32x4.add (local.get $a6) (local.get $a7)))
            (local.set $s
              (f32.add (local.get $bias)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a6)) (f32x4.extract_lane 1 (local.get $a6)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a6)) (f32x4.extract_lane 3 (local.get $a6))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store
              (i32.add (i32.add (local.get $out) (i32.mul (i32.add (local.get $k) (i32.const 3)) (local.get $os)))
                (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $quads)))
        ;; the remaining inputs one at a time
        (block $singles_done
          (loop $singles
            (br_if $singles_done (i32.ge_u (local.get $k) (local.get $nb)))
            (local.set $xp0 (i32.add (local.get $x) (i32.mul (local.get $k) (local.get $xs))))
            (local.set $a0 (v128.const f32x4 0 0 0 0))
            (local.set $a1 (v128.const f32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $cols1_done
              (loop $cols1
                (br_if $cols1_done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $off (i32.shl (local.get $i) (i32.const 2)))
                (local.set $wp (i32.add (local.get $row) (local.get $off)))
                (local.set $a0
                  (f32x4.add (local.get $a0) (f32x4.mul (v128.load (local.get $wp)) (v128.load (i32.add (local.get $xp0) (local.get $off))))))
                (local.set $a1
                  (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $wp)) (v128.load offset=16 (i32.add (local.get $xp0) (local.get $off))))))
                (local.set $i (i32.add (local.get $i) (i32.const 8)))
                (br $cols1)))
            (local.set $a0 (f32x4.add (local.get $a0) (local.get $a1)))
            (local.set $s
              (f32.add (local.get $bias)
                (f32.add
                  (f32.add (f32x4.extract_lane 0 (local.get $a0)) (f32x4.extract_lane 1 (local.get $a0)))
                  (f32.add (f32x4.extract_lane 2 (local.get $a0)) (f32x4.extract_lane 3 (local.get $a0))))))
            (if (i32.and (local.get $relu) (f32.lt (local.get $s) (f32.const 0)))
              (then (local.set $s (f32.const 0))))
            (f32.store
              (i32.add (i32.add (local.get $out) (i32.mul (local.get $k) (local.get $os))) (i32.shl (local.get $o) (i32.const 2)))
              (local.get $s))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $singles)))
        (local.set $row (i32.add (local.get $row) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $rows))))
)
